"""The project's Dagster instance (dagster.yaml's instance_class): Dagster's SQLite storage in
DAGSTER_HOME, the `warehouse` pool of 1, and a blocked claim that waits before it answers."""

import shutil
import time

import dagster as dg

from mlinfra_assets.dagster_instance import (
    CLAIM_WAIT_S,
    MlinfraInstance,
    PromptClaimEventLogStorage,
)
from mlinfra_assets.spec import PROJECT_ROOT


def _instance(home) -> dg.DagsterInstance:  # noqa: ANN001 - a Path
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def test_the_project_instance_keeps_its_files_in_dagster_home(tmp_path):
    instance = _instance(tmp_path)
    try:
        assert isinstance(instance, MlinfraInstance)
        assert isinstance(instance.event_log_storage, PromptClaimEventLogStorage)
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert (tmp_path / "history" / "runs.db").exists()
        assert (tmp_path / "history" / "runs" / "index.db").exists()
    finally:
        instance.dispose()


def test_a_run_with_nothing_running_waits_on_its_claim_and_gets_the_freed_slot(tmp_path):
    instance = _instance(tmp_path)
    storage = instance.event_log_storage
    try:
        storage.initialize_concurrency_limit_to_default("warehouse")
        first = storage.claim_concurrency_slot("warehouse", "run-a", "step_1")
        assert first.is_claimed

        started = time.monotonic()
        second = storage.claim_concurrency_slot("warehouse", "run-b", "step_1")
        waited = time.monotonic() - started
        assert not second.is_claimed
        assert second.sleep_interval == 0.0  # the executor asks again on its next loop
        assert waited >= CLAIM_WAIT_S * 0.9  # instead of looping without a pause

        storage.free_concurrency_slot_for_step("run-a", "step_1")
        assert storage.claim_concurrency_slot("warehouse", "run-b", "step_1").is_claimed
        assert not storage.claim_concurrency_slot("warehouse", "run-a", "step_2").is_claimed

        # run-b's own step runs: its next step is told to ask again later, without a wait here
        # (the executor's loop already waits on the running step's events)
        own = storage.claim_concurrency_slot("warehouse", "run-b", "step_2")
        assert not own.is_claimed and own.sleep_interval == CLAIM_WAIT_S
    finally:
        instance.dispose()


def _claim_at_once(home: str, run: str, barrier, out) -> None:  # noqa: ANN001 - multiprocessing objects
    instance = dg.DagsterInstance.from_config(home)
    try:
        barrier.wait(timeout=60)
        out.put((run, instance.event_log_storage.claim_concurrency_slot("warehouse", run, "first_step").is_claimed))
    finally:
        instance.dispose()


def test_first_claims_of_runs_started_together_get_one_slot(tmp_path):
    """Dagster's SQL claim reads a free slot, then writes it by id: runs whose first steps claimed
    in the same milliseconds both got the pool of 1. Here six processes claim behind a barrier,
    three rounds: one slot each round."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    instance = _instance(tmp_path)
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default("warehouse")
    try:
        for round_ in range(3):
            barrier, out = ctx.Barrier(6), ctx.Queue()
            runs = [f"run-{round_}-{i}" for i in range(6)]
            procs = [ctx.Process(target=_claim_at_once, args=(str(tmp_path), r, barrier, out)) for r in runs]
            for p in procs:
                p.start()
            claimed = [out.get(timeout=120) for _ in procs]
            for p in procs:
                p.join(timeout=60)
            winners = [run for run, ok in claimed if ok]
            assert len(winners) == 1, claimed
            for run in runs:
                storage.free_concurrency_slots_for_run(run)
    finally:
        instance.dispose()
