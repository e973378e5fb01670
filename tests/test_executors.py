"""Where the steps run is configuration: MLINFRA_EXECUTOR picks the code location's executor
(this process's forked children by default, a Docker container or a Kubernetes job per step),
and the run configs docs/engines.md shows for the two container executors are valid for every
job; a wrong value is one line naming the variable."""

import subprocess
import sys

import dagster as dg
import pytest

from mlinfra_assets.definitions import build_definitions
from mlinfra_assets.executor import EXECUTOR, EXECUTOR_ENV, ExecutorError, executor_for
from mlinfra_assets.resources import default_resources
from tests.conftest import small_spec

# the run configs of docs/engines.md ("Steps in containers or pods"), as a user writes them
DOCKER = {"execution": {"config": {
    "image": "registry.example.com/mlinfra:1.0",
    "network": "mlinfra",
    "env_vars": ["MLINFRA_SPEC=/srv/mlinfra/spec.yaml", "MLINFRA_DATA_DIR=/srv/mlinfra/data",
                 "MLFLOW_TRACKING_URI=http://mlflow:5000", "DAGSTER_HOME"],
    "container_kwargs": {"volumes": ["/srv/mlinfra:/srv/mlinfra"]},
}}}
K8S = {"execution": {"config": {
    "job_image": "registry.example.com/mlinfra:1.0",
    "job_namespace": "mlinfra",
    "image_pull_policy": "IfNotPresent",
    "env_vars": ["MLINFRA_SPEC=/srv/mlinfra/spec.yaml", "MLINFRA_DATA_DIR=/srv/mlinfra/data",
                 "MLFLOW_TRACKING_URI=http://mlflow.mlinfra:5000"],
    "volume_mounts": [{"name": "mlinfra", "mount_path": "/srv/mlinfra"}],
    "volumes": [{"name": "mlinfra", "persistent_volume_claim": {"claim_name": "mlinfra-data"}}],
    "step_k8s_config": {"container_config": {"resources": {"requests": {"cpu": "1", "memory": "4Gi"}}}},
}}}


def contains(resolved: object, given: object) -> bool:
    """`given` (a user's config) is in `resolved` (Dagster's, with the defaults filled in)."""
    if isinstance(given, dict):
        return isinstance(resolved, dict) and all(k in resolved and contains(resolved[k], v) for k, v in given.items())
    return resolved == given


def test_the_default_is_the_forkserver_multiprocess_executor():
    assert executor_for({}) is EXECUTOR and executor_for({EXECUTOR_ENV: "multiprocess"}) is EXECUTOR


@pytest.mark.parametrize("name,run_config", [("docker", DOCKER), ("k8s", K8S)])
def test_every_job_runs_its_steps_in_containers_with_the_documented_config(monkeypatch, tmp_path, name, run_config):
    monkeypatch.setenv(EXECUTOR_ENV, name)
    defs = build_definitions(small_spec(), default_resources(tmp_path))
    jobs = [j for j in defs.resolve_all_job_defs() if not j.name.startswith("__")]
    assert jobs
    for job in jobs:
        assert job.executor_def.name == name, job.name
        resolved = dg.validate_run_config(job, run_config)["execution"][name]  # defaults filled in
        assert contains(resolved, run_config["execution"]["config"]), job.name
    with pytest.raises(dg.DagsterInvalidConfigError, match='unexpected config entry "imag"'):
        dg.validate_run_config(jobs[0], {"execution": {"config": {"imag": "typo"}}})


def test_an_unknown_executor_is_one_line_naming_the_variable(tmp_path):
    with pytest.raises(ExecutorError, match=f"{EXECUTOR_ENV}='lambda' names no executor: use one of"):
        executor_for({EXECUTOR_ENV: "lambda"})
    done = subprocess.run([sys.executable, "-m", "mlinfra_assets.cli", "run", "--data-dir", str(tmp_path)],
                          env={"PATH": "/usr/bin:/bin", EXECUTOR_ENV: "lambda", "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: {EXECUTOR_ENV}='lambda' names no executor: use one of ['docker', 'k8s', 'multiprocess']"
    ], done.stderr[-2000:]
