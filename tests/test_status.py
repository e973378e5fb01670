"""`mlinfra status` on the registry: no model yet, no champion yet, and a registry it cannot read
are three different answers; an error that is none of these is raised, not hidden."""

import dagster as dg
import pytest

from mlinfra_assets.resources import MLflowTracker, default_resources
from mlinfra_assets.status import (
    edge_lines,
    edge_summary,
    mlflow_section,
    read_registry,
    status_dict,
)
from mlinfra_assets.training import registry
from tests.conftest import small_spec


def test_a_fresh_store_has_no_model_yet(tmp_path):
    spec, resources = small_spec(), default_resources(tmp_path / "data")
    assert read_registry(spec, resources["mlflow"]) == (0, {}, None)
    assert mlflow_section(spec, resources["mlflow"])[1] == f"  no registered model {spec.name!r} yet: run `mlinfra run`"


def test_a_model_without_champion_is_not_called_missing(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    spec, resources = small_spec(), default_resources(tmp_path / "data")
    tracker = resources["mlflow"]
    tracker.activate()
    client = MlflowClient(tracking_uri=tracker.store_uri(), registry_uri=tracker.store_uri())
    client.create_registered_model(spec.name)
    client.create_model_version(spec.name, (tmp_path / "model").as_uri())
    client.create_model_version(spec.name, (tmp_path / "model").as_uri())
    assert read_registry(spec, tracker) == (2, {}, None)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.instance_for_test(temp_dir=str(tmp_path)):
        state = status_dict(spec, resources)
    assert state["champion"]["version"] is None
    assert state["champion"]["note"] == "no champion yet: the gate (training/evaluation) promoted none of 2 version(s)"
    registry.set_alias(tracker, spec.name, registry.CHAMPION, "2")
    assert read_registry(spec, tracker) == (2, {registry.CHAMPION: "2"}, None)
    assert mlflow_section(spec, tracker)[1] == f"  registered model {spec.name!r}: 2 version(s), aliases {{'champion': '2'}}"


@pytest.mark.parametrize("store", ["garbage file", "server down"])
def test_an_unreadable_registry_is_said_so(tmp_path, monkeypatch, store):
    spec, resources = small_spec(), default_resources(tmp_path / "data")
    if store == "garbage file":
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "mlflow.db").write_bytes(b"not a database " * 100)
        tracker = resources["mlflow"]
    else:
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        tracker = MLflowTracker(tracking_uri="http://127.0.0.1:9", artifact_root=str(tmp_path / "art"))
        resources = {**resources, "mlflow": tracker}
    versions, aliases, error = read_registry(spec, tracker)
    assert (versions, aliases) == (0, {}) and error.startswith(f"registry not readable at {tracker.tracking_uri}: ")
    [_, line] = mlflow_section(spec, tracker)
    assert "registry not readable" in line and "no registered model" not in line
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.instance_for_test(temp_dir=str(tmp_path)):
        state = status_dict(spec, resources)
    assert state["champion"]["version"] is None and state["champion"]["note"] == error


def test_an_error_that_is_not_the_registry_is_raised(tmp_path, monkeypatch):
    spec, resources = small_spec(), default_resources(tmp_path / "data")

    def broken(self):
        raise KeyError("experiment")

    monkeypatch.setattr(MLflowTracker, "activate", broken)
    with pytest.raises(KeyError, match="experiment"):
        mlflow_section(spec, resources["mlflow"])


def test_an_evaluation_is_one_line_per_version_with_the_champion_and_baselines_beside_it():
    from mlinfra_assets.status import evaluation_lines

    rows = [("2", "accuracy", 0.98514, "keep"), ("2", "baseline_majority_macro_f1", 0.2, "keep"),
            ("2", "champion_macro_f1", 0.9, "keep"), ("2", "champion_rows", 50.0, "keep"),
            ("2", "macro_f1", 0.85, "keep"), ("2", "rows", 1234.0, "keep"), ("2", "ece", None, "keep")]
    assert evaluation_lines(rows) == [
        "  v2 (keep): accuracy 0.9851, macro_f1 0.8500, ece n/a, rows 1,234",
        "    the champion before it: macro_f1 0.9000",
        "    baselines: majority_macro_f1 0.2000",
    ]
    assert evaluation_lines([("1", "f1", 0.5, "promote")]) == ["  v1 (promote): f1 0.5000"]


def test_the_run_summary_tells_the_edge_variants_in_two_lines_and_status_lists_each():
    spec = small_spec()
    variants = [  # variant, size_bytes, latency_b1_p50_ms, metric_value, deployable
        ("fp32", 200 * 1024, 0.080, 0.50, True),
        ("onnx_int8", 60 * 1024, 0.020, 0.49, True),
        ("onnx_fp32", 190 * 1024, 0.015, 0.50, True),
        ("pruned_80", 200 * 1024, 0.079, 0.41, False),
    ]
    assert edge_summary(spec, variants) == [
        "== edge variants: 3 of 4 deployable (mlinfra status lists them); smallest onnx_int8 60.0 KiB, "
        "fastest onnx_fp32 p50@1 0.015 ms (fp32 200.0 KiB, 0.080 ms)",
        f"  not deployable: pruned_80 ({spec.metric} 0.4100)",
    ]
    listed = edge_lines(spec, variants)
    assert len(listed) == 1 + len(variants) and "deployable=False" in listed[-1]
    # nothing deployable, no labelled holdout: said, not a figure
    unjudged = [(name, size, ms, None, False) for name, size, ms, _, _ in variants]
    [head, kept_out] = edge_summary(spec, unjudged)
    assert head == "== edge variants: 0 of 4 deployable (mlinfra status lists them)"
    assert kept_out.count("not judged (no labelled holdout)") == len(variants)
