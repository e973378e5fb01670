"""Training against a real `mlflow server` on 127.0.0.1 (MLFLOW_TRACKING_URI), then the gate."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mlinfra_assets import keys
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.training import registry
from tests.training.conftest import training_spec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """An `mlflow server` in its own process group, killed at the end; yields its URI."""
    port = _free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--default-artifact-root", str(tmp_path / "server-artifacts"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.integration
def test_training_against_a_tracking_server(mlflow_server, warehouse_resources, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLINFRA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLINFRA_WAREHOUSE", warehouse_resources["warehouse"].path)
    resources = default_resources()  # from the environment, as `mlinfra run` builds them
    tracker = resources["mlflow"]
    assert tracker.tracking_uri == mlflow_server

    spec = training_spec(epochs=2)
    result = run_assets(spec, resources, selection=[keys.TRAINING_SET, keys.MODEL, keys.EVALUATION])
    model = result.asset_value(keys.MODEL)
    client = mlflow.MlflowClient(mlflow_server)
    run = client.get_run(model["run_id"])  # asked of the server, not of a local store
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert run.data.tags["gate_decision"] == "promote"
    assert "holdout_f1" in run.data.metrics
    assert client.get_model_version_by_alias(spec.name, registry.CHAMPION).version == model["version"]
    assert not (tmp_path / "data" / "mlflow.db").exists()  # nothing went to the local default
    # the champion loads back through the server (artifacts included)
    champion = registry.load_scoring_model(tracker, spec.name)
    assert champion.version == model["version"]
