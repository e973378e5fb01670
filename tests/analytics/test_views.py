"""The analytics views: created over every stage's tables, queryable, and in agreement with them."""

import json
from datetime import datetime

import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.analytics.views import views_for
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.runner import run_assets
from tests.monitoring.conftest import build_warehouse, fixture_model, register_champion

FIRST, LAST = "2026-01-14", "2026-01-20"


def write_labeling_and_evaluation(path: str) -> None:
    """labeling.lf_summary, labeling.weak_labels and training.evaluation per docs/tables.md."""
    con = duckdb.connect(path)
    con.execute("CREATE SCHEMA IF NOT EXISTS labeling")
    con.execute(
        """CREATE OR REPLACE TABLE labeling.lf_summary AS SELECT * FROM (VALUES
            ('lf_amount_spike', '[1]', 0.05, 0.02, 0.01, 40, 10, 0.8),
            ('lf_night', '[1]', 0.10, 0.03, 0.02, 20, 30, 0.4),
            ('lf_small_grocery', '[0]', 0.30, 0.05, 0.01, 0, 0, NULL))
        t(lf, polarity, coverage, "overlaps", conflicts, correct, incorrect, emp_acc)"""
    )
    con.execute(
        """CREATE OR REPLACE TABLE labeling.weak_labels AS
        SELECT CAST(txn_id AS VARCHAR) AS row_id,
               CASE WHEN txn_id % 10 = 0 THEN 0.2 ELSE 0.9 END AS prob_legit,
               CASE WHEN txn_id % 10 = 0 THEN 0.8 ELSE 0.1 END AS prob_fraud,
               CASE WHEN txn_id % 10 = 0 THEN 1 WHEN txn_id % 10 = 1 THEN -1 ELSE 0 END AS label,
               0.9 AS confidence, 'lm-1' AS label_model_version
        FROM raw.transactions"""
    )
    con.execute("CREATE SCHEMA IF NOT EXISTS training")
    con.execute(
        "CREATE OR REPLACE TABLE training.evaluation (model_version VARCHAR, slice VARCHAR, "
        "slice_value VARCHAR, metric VARCHAR, value DOUBLE, champion_version VARCHAR, "
        "decision VARCHAR, evaluated_at TIMESTAMP)"
    )
    rows = [
        ("1", "overall", "all", "f1", 0.60, None, "promote", datetime(2026, 1, 11)),
        ("1", "channel", "pos", "f1", 0.50, None, "promote", datetime(2026, 1, 11)),
        ("2", "overall", "all", "f1", 0.70, "1", "promote", datetime(2026, 1, 17)),
        ("2", "overall", "all", "champion_f1", 0.60, "1", "promote", datetime(2026, 1, 17)),
    ]
    con.executemany("INSERT INTO training.evaluation VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    spec, resources = build_warehouse(tmp_path_factory.mktemp("analytics"), day=15)
    path = resources["warehouse"].path
    register_champion(resources, spec, fixture_model(spec, path))
    run_assets(
        spec, resources, selection=[keys.PREDICTIONS, keys.DRIFT_REPORT], first=FIRST, last=LAST
    )
    return spec, resources


def query(path: str, sql: str):
    return Warehouse(path=path).query_df(sql)


def test_a_missing_input_is_named(warehouse):
    spec, resources = warehouse
    key = views_for(spec)[3].key  # training_runs, before training.evaluation exists
    assert key.path == ["analytics", "training_runs"]
    result = run_assets(spec, resources, selection=[key], raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failure.event_specific_data.error)
    assert "training.evaluation" in message and "training/evaluation" in message


def test_views_are_queryable_and_agree_with_their_tables(warehouse):
    spec, resources = warehouse
    path = resources["warehouse"].path
    write_labeling_and_evaluation(path)
    views = views_for(spec)
    result = run_assets(spec, resources, selection=[v.key for v in views])
    counts = {
        m.asset_key.path[-1]: m.metadata["dagster/row_count"].value
        for m in result.asset_materializations_for_node("analytics_views")
    }
    for view in views:  # every example query in the docs runs
        assert len(query(path, view.example())) > 0, view.name

    scores = query(path, "SELECT * FROM analytics.model_scores")
    preds = query(path, "SELECT _row_id, prob_fraud, _prediction FROM monitoring.predictions ORDER BY _row_id")
    assert counts["model_scores"] == len(scores) == len(preds)
    assert {"ts", "amount", "channel", "prob_fraud", "_predicted_class", "_model_version"} <= set(scores.columns)
    scores = scores.sort_values("_row_id")
    assert scores["prob_fraud"].tolist() == pytest.approx(preds["prob_fraud"].tolist())
    assert scores["_predicted_class"].tolist() == [spec.classes[i] for i in preds["_prediction"]]
    assert (scores["_confidence"] >= 0.5).all()

    history = query(path, "SELECT * FROM analytics.drift_history ORDER BY _partition")  # the README's query
    assert (history["day"] == history["_partition"]).all()
    assert counts["drift_history"] == len(history) == 7
    assert history["flagged"].tolist() == [False, False] + [True] * 5  # drift from January 16
    assert (history["features_checked"] == len(spec.feature_columns)).all()
    assert history["prediction_psi"].notna().all()

    quality = query(path, "SELECT * FROM analytics.label_quality ORDER BY lf")
    assert quality["lf"].tolist() == ["lf_amount_spike", "lf_night", "lf_small_grocery"]
    assert quality["weak_positive_share"].iloc[0] == pytest.approx(0.1, abs=0.01)
    assert quality["weak_abstain_share"].iloc[0] == pytest.approx(0.1, abs=0.01)
    weak = json.loads(quality["weak_class_counts"].iloc[0])  # rows per class name
    assert set(weak) == {"legit", "fraud"} and weak["fraud"] == pytest.approx(weak["legit"] / 8, rel=0.1)

    runs = query(path, "SELECT * FROM analytics.training_runs ORDER BY evaluated_at")
    assert runs["model_version"].tolist() == ["1", "2"] and runs["metric"].tolist() == ["f1", "f1"]
    assert runs["delta"].iloc[1] == pytest.approx(0.1) and runs["champion_value"].isna().iloc[0]
