"""The registry's alias lookup: a missing model or alias is "none yet"; any other registry
error is raised, never read as "no champion" (which would let the gate promote unchecked)."""

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, TEMPORARILY_UNAVAILABLE

from mlinfra_assets.resources import default_resources
from mlinfra_assets.training import registry


def test_a_missing_model_or_alias_is_none(tmp_path):
    import mlflow

    tracker = default_resources(tmp_path)["mlflow"]
    assert registry.alias_version(tracker, "never_registered", registry.CHAMPION) is None
    tracker.activate()
    mlflow.MlflowClient().create_registered_model("registered")
    assert registry.alias_version(tracker, "registered", registry.CHAMPION) is None


@pytest.mark.parametrize("code", [INTERNAL_ERROR, TEMPORARILY_UNAVAILABLE])
def test_any_other_registry_error_is_raised(tmp_path, monkeypatch, code):
    class Failing:
        def get_model_version_by_alias(self, name, alias):  # noqa: ANN001, ANN202
            raise MlflowException("the registry is down", error_code=code)

    monkeypatch.setattr(registry, "_client", lambda mlflow: Failing())
    tracker = default_resources(tmp_path)["mlflow"]
    with pytest.raises(MlflowException, match="the registry is down"):
        registry.champion_version(tracker, "card_fraud")
