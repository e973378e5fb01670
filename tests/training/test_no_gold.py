"""No gold: the holdout is scored on annotations; without any the gate says 'not evaluated'.
A 3-class spec (wine, class names that are not identifiers) through training_set -> model -> evaluation."""

import dagster as dg
import duckdb
import mlflow
import pytest

from mlinfra_assets import keys
from mlinfra_assets.resources import default_resources
from mlinfra_assets.stage import SHOWN
from mlinfra_assets.training import build_stage, registry
from tests.training.tabular import dataset, label_holdout, spec_for, write_warehouse

CLASSES = ["Barolo red", "grignolino-1", "3"]  # class names need not be identifiers


def _meta(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == key)
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_without_gold_the_gate_waits_for_annotated_holdout_rows_then_scores_macro_f1(tmp_path):
    frame, _ = dataset("wine")
    spec = spec_for("wine", frame, CLASSES)
    assert spec.gold is None and spec.metric == "macro_f1"
    resources = default_resources(tmp_path / "data")
    path = resources["warehouse"].path
    counts = write_warehouse(path, spec, frame, annotate_holdout=False)
    assets = build_stage(spec).assets
    tracker = resources["mlflow"]

    # no labelled holdout row: nothing is scored, the first model becomes champion unevaluated
    first = dg.materialize(assets, resources=resources)
    meta = _meta(first, keys.EVALUATION)
    assert meta["evaluated"] is False and meta["decision"] == "promote"
    assert meta["reason"].startswith("not evaluated: no labelled holdout rows; annotate the queue (mlinfra label)")
    for figure in ("metric_value", "baseline_majority", "baseline_prior", "champion_metric_value"):
        assert meta[figure] == "not evaluated: no labelled holdout rows", figure  # said, never 0
    assert registry.champion_version(tracker, spec.name) == "1"
    training = _meta(first, keys.TRAINING_SET)
    assert {f"share_{c}" for c in CLASSES} <= set(training)
    assert training["rows_gold"] + training["rows_weak"] == counts["rows"] - counts["holdout"]
    # a second model, still no labels: the champion stays
    second = dg.materialize(assets, resources=resources, selection=[keys.MODEL, keys.EVALUATION])
    meta = _meta(second, keys.EVALUATION)
    assert meta["decision"] == "keep_champion" and "the champion (version 1) stays" in meta["reason"]
    assert registry.champion_version(tracker, spec.name) == "1"

    # the annotators label the holdout: version 2 is scored on macro-F1 beside the baselines
    label_holdout(path, spec, frame)
    third = dg.materialize(assets, resources=resources, selection=[keys.EVALUATION])
    meta = _meta(third, keys.EVALUATION)
    assert meta["evaluated"] is True and meta["metric"] == "macro_f1"
    assert meta["holdout_rows"] == counts["holdout"]
    assert meta["metric_value"] == pytest.approx(meta["macro_f1"])
    assert meta["metric_value"] > meta["baseline_majority"] + 0.3 and meta["beats_majority"] is True
    assert meta["baseline_prior"] > meta["baseline_majority"]  # the majority's macro-F1 counts one class
    assert "f1" not in meta and "pr_auc" not in meta and "pr_curve" not in meta
    # the figures say promote; with a champion in place version 2 first scores live partitions as
    # shadow (serving.shadow_days, tests/monitoring/test_shadow.py): the champion stays until then
    assert meta["decision"] == "shadow" and "majority-class baseline" in meta["reason"]
    assert "as shadow beside champion v1" in meta["reason"] and meta["shadow_version"] == "2"
    assert meta["champion_version_after"] == "1" and meta["champion_beats_majority"] is True
    assert meta["champion_vs_baseline"].startswith("the champion (version 1) beats the majority-class baseline")
    assert all(c in meta["per_class"] for c in CLASSES)
    assert registry.champion_version(tracker, spec.name) == "1"
    assert registry.alias_version(tracker, spec.name, registry.SHADOW) == "2"

    con = duckdb.connect(path, read_only=True)
    try:
        table = con.execute("SELECT model_version, slice, slice_value, metric, value, decision "
                            "FROM training.evaluation").df()
    finally:
        con.close()
    v1 = table[table["model_version"] == "1"]
    assert v1[["metric", "value", "decision"]].values.tolist() == [["rows", 0.0, "promote"]]
    v2 = table[(table["model_version"] == "2") & (table["slice"] == "overall")].set_index("metric")["value"]
    assert v2["baseline_majority_macro_f1"] == pytest.approx(meta["baseline_majority"], rel=SHOWN)
    assert v2["champion_macro_f1"] == pytest.approx(v2["macro_f1"])  # same data, same seed: the same model
    per_class = table[(table["model_version"] == "2") & (table["slice"] == "class")]
    assert set(per_class["slice_value"]) == set(CLASSES)
    assert set(per_class["metric"]) == {"precision", "recall", "f1", "support"}

    tracker.activate()
    run = mlflow.MlflowClient(tracker.tracking_uri).get_run(second.asset_value(keys.MODEL)["run_id"])
    assert run.data.metrics["holdout_macro_f1"] == pytest.approx(meta["macro_f1"], rel=SHOWN)
    assert run.data.metrics["holdout_baseline_majority_macro_f1"] == pytest.approx(meta["baseline_majority"], rel=SHOWN)
    assert run.data.tags["metric"] == "macro_f1" and run.data.tags["evaluated"] == "true"
    listing = {v["version"]: v for v in registry.list_versions(tracker, spec.name)}
    assert listing["2"]["holdout_metric"] == pytest.approx(meta["macro_f1"], rel=SHOWN) and listing["2"]["metric"] == "macro_f1"
