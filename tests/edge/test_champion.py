"""Edge variants come from the champion the gate left, never a rejected challenger; 3 classes
(wine) are judged on macro-F1; without labelled holdout rows the variants are timed, not judged."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import json  # noqa: E402

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402
import pytest  # noqa: E402

from mlinfra_assets import edge, keys, training  # noqa: E402
from mlinfra_assets.edge.evaluate import NOT_JUDGED  # noqa: E402
from mlinfra_assets.resources import default_resources  # noqa: E402
from mlinfra_assets.training import registry  # noqa: E402
from tests.training.tabular import dataset, label_holdout, spec_for, write_warehouse  # noqa: E402

pytestmark = pytest.mark.integration  # two trainings on wine and two edge builds: ~30 s CPU


def _meta(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == key)
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _edge_file_version(folder: str) -> str:
    import onnx

    model = onnx.load(os.path.join(folder, "edge_model.onnx"))
    return {p.key: p.value for p in model.metadata_props}["model_version"]


def test_edge_variants_are_built_from_the_champion_the_gate_kept(tmp_path):
    frame, classes = dataset("wine")
    spec = spec_for("wine", frame, classes)
    worse = spec.model_copy(update={"training": spec.training.model_copy(update={"epochs": 0})})
    resources = default_resources(tmp_path / "data")
    path = resources["warehouse"].path
    write_warehouse(path, spec, frame, annotate_holdout=False)
    stages = training.build_stage(spec).assets + edge.build_stage(spec).assets

    # no labelled holdout row: version 1 becomes champion unevaluated; its variants are timed, not judged
    first = dg.materialize(stages, resources=resources)
    assert _meta(first, keys.EVALUATION)["evaluated"] is False
    report = _meta(first, keys.COMPRESSION_REPORT)
    assert report["holdout_labelled"] is False and report["deployable_variants"] == 0
    assert report["fp32_metric_value"] == "not judged: no labelled holdout rows"
    con = duckdb.connect(path, read_only=True)
    try:
        reasons = con.execute("SELECT reason FROM edge.compression_report WHERE status = 'ok'").fetchall()
    finally:
        con.close()
    assert {r for (r,) in reasons} == {NOT_JUDGED}

    # labelled holdout; an untrained challenger (version 2) is refused and version 1 stays champion
    label_holdout(path, spec, frame)
    second = dg.materialize(training.build_stage(worse).assets + edge.build_stage(worse).assets,
                            resources=resources, selection=[keys.MODEL, keys.EVALUATION, keys.COMPRESSED_MODELS,
                                                            keys.COMPRESSION_REPORT])
    gate = _meta(second, keys.EVALUATION)
    assert (gate["challenger_version"], gate["decision"]) == ("2", "keep_champion"), gate["reason"]
    assert gate["champion_version_after"] == "1"
    assert registry.champion_version(resources["mlflow"], spec.name) == "1"
    built = _meta(second, keys.COMPRESSED_MODELS)
    assert built["model_version"] == "1" and built["built_from"] == "champion"
    assert built["challenger_version"] == "2"
    value = second.asset_value(keys.COMPRESSED_MODELS)
    assert value["version"] == "1" and value["folder"].endswith(os.path.join("edge", "1"))
    assert _edge_file_version(value["folder"]) == "1"  # the deliverable is the champion too
    assert json.loads((tmp_path / "data" / "models" / "edge" / "1" / "classes.json").read_text()) == classes

    # the report judges each variant against the champion on macro-F1
    report = _meta(second, keys.COMPRESSION_REPORT)
    assert report["metric"] == "macro_f1" and report["model_version"] == "1"
    assert report["fp32_metric_value"] == pytest.approx(gate["champion_metric_value"])
    assert "fp32_f1" not in report and "holdout_positives" not in report
    con = duckdb.connect(path, read_only=True)
    try:
        rows = con.execute("SELECT variant, metric_value, metric_delta, f1, deployable, reason "
                           "FROM edge.compression_report WHERE status = 'ok'").df().set_index("variant")
    finally:
        con.close()
    assert rows["f1"].isna().all()  # the positive class's F1 is a two-class figure
    assert rows.loc["fp32", "metric_delta"] == 0.0 and bool(rows.loc["fp32", "deployable"])
    assert ((rows["metric_delta"] >= -spec.edge.f1_margin) | ~rows["deployable"]).all()
    assert rows.loc["onnx_fp32", "metric_value"] == pytest.approx(rows.loc["fp32", "metric_value"])
