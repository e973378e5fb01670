"""Training against a real `mlflow server` on 127.0.0.1 (MLFLOW_TRACKING_URI), then the gate."""

from pathlib import Path

import pytest

from mlinfra_assets import keys
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.training import registry
from tests import servers
from tests.training.conftest import training_spec


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """An `mlflow server` in its own process group, killed at the end; yields its URI."""
    with servers.mlflow_server(tmp_path) as uri:
        yield uri


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
