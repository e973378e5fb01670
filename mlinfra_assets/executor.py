"""The code location's executor: Dagster's multiprocess executor, with its forkserver started
before the run asks for its first pool slot.

Runs launched from the UI, schedules and sensors execute each step in a process of its own.
Spawned fresh, a step re-imports dagster, this code location and the heavy libraries (3-7 s
each); a forkserver that preloaded them forks a step in about a second. Dagster starts that
forkserver when it launches the run's first step, after the step has claimed its slot of the
`warehouse` pool: the run then held the pool for the 6-8 s the forkserver took to import torch,
MLflow, SDV and the rest, while the steps of the runs beside it waited. Here the forkserver is
started, and waited for, before the first claim.

The forkserver also opens the run's Dagster instance once and closes it (`warm_instance`): a
step's first act is to open that instance, and in a fresh process that took 0.75-0.85 s
(SQLAlchemy's SQLite dialect, Alembic and its revision scripts, imported and read the first
time); in a child of a forkserver that did it once, 0.07 s. A step of the pool is that much
shorter, and the runs behind it wait that much less.

It stays Dagster's multiprocess executor and its run config (`execution: config:`): a
`start_method`, `max_concurrent` or `retries` there replaces the defaults. `execute_in_process`
(`mlinfra run`, the tests) is not affected. Linux and macOS only.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster._core.definitions.executor_definition import (
    _core_multiprocess_executor_creation,
    multiple_process_executor_requirements,
)
from dagster._core.executor.multiprocess import MultiprocessExecutor

PRELOAD_MODULES = [
    "mlinfra_assets.definitions", "torch", "sklearn.ensemble", "mlflow", "sdv.single_table",
    "snorkel.labeling.model", "cleanlab.filter",
]
# what Dagster's executor preloads before the configured modules (multiprocess.py)
DAGSTER_FIRST = "dagster._core.executor.multiprocess"
# preloaded last: opens the instance named by INSTANCE_ENV (a serialized InstanceRef) once
WARM_INSTANCE = "mlinfra_assets.warm_instance"
INSTANCE_ENV = "MLINFRA_FORKSERVER_INSTANCE"


class WarmForkserverExecutor(MultiprocessExecutor):
    """MultiprocessExecutor whose forkserver has imported its preload modules before any step
    claims a pool slot."""

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[dg.DagsterEvent]:
        if self._start_method == "forkserver":
            started = time.perf_counter()
            preload = list(self._explicit_forkserver_preload or [])
            ref = plan_context.instance.get_ref()
            warm_forkserver([DAGSTER_FIRST, *[m for m in preload if m != DAGSTER_FIRST], WARM_INSTANCE], ref)
            plan_context.log.debug(
                f"forkserver ready in {time.perf_counter() - started:.1f} s (preloaded {', '.join(preload)})"
            )
        yield from super().execute(plan_context, execution_plan)


def warm_forkserver(preload: list[str], instance_ref: Any = None) -> None:
    """Start the process's forkserver with `preload` and wait until it forks: a no-op child's
    start returns once the server has imported the modules (the later preload list Dagster
    sets is a part of this one, and a running server is reused). With `instance_ref`, the
    server opens and closes that instance once (mlinfra_assets/warm_instance.py)."""
    from dagster._serdes import serialize_value

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    if instance_ref is not None:  # the server starts with this process's environment
        os.environ[INSTANCE_ENV] = serialize_value(instance_ref)
    child = ctx.Process(target=time.sleep, args=(0,), daemon=True)
    child.start()
    child.join()


@dg.executor(
    name="multiprocess",
    config_schema=dg.multiprocess_executor.config_field.config_type,
    requirements=multiple_process_executor_requirements(),
)
def _warm_multiprocess_executor(init_context: dg.InitExecutorContext) -> WarmForkserverExecutor:
    base = _core_multiprocess_executor_creation(init_context.executor_config)
    executor = WarmForkserverExecutor.__new__(WarmForkserverExecutor)
    executor.__dict__.update(base.__dict__)  # the same executor, configured as Dagster configures it
    return executor


def _forkserver_unless_configured(config: dict[str, Any]) -> dict[str, Any]:
    return {"start_method": {"forkserver": {"preload_modules": PRELOAD_MODULES}}, **config}


EXECUTOR = _warm_multiprocess_executor.configured(
    _forkserver_unless_configured, name="multiprocess",
    config_schema=dg.multiprocess_executor.config_field.config_type,
)


EXECUTOR_ENV = "MLINFRA_EXECUTOR"
# where the steps run: this process's forked children (the default), a Docker container or a
# Kubernetes job per step (Dagster's own executors, configured by the run's `execution: config:`)
EXECUTORS = {"multiprocess": None, "docker": ("dagster_docker", "docker_executor"),
             "k8s": ("dagster_k8s", "k8s_job_executor")}


class ExecutorError(ValueError):
    """MLINFRA_EXECUTOR names no executor, or one whose package is not installed."""


def executor_for(env: dict[str, str] | None = None) -> dg.ExecutorDefinition:
    """The code location's executor, chosen by MLINFRA_EXECUTOR (multiprocess, docker or k8s)."""
    name = (env if env is not None else os.environ).get(EXECUTOR_ENV, "multiprocess").strip() or "multiprocess"
    if name not in EXECUTORS:
        raise ExecutorError(f"{EXECUTOR_ENV}={name!r} names no executor: use one of {sorted(EXECUTORS)}")
    if EXECUTORS[name] is None:
        return EXECUTOR
    module, attr = EXECUTORS[name]
    try:
        return getattr(__import__(module), attr)
    except ImportError as exc:
        raise ExecutorError(
            f"{EXECUTOR_ENV}={name} needs {module.replace('_', '-')}: pip install -e '.[deploy]' "
            f"(or unset {EXECUTOR_ENV} for the multiprocess executor)"
        ) from exc
