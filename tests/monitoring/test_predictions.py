"""Predictions by the registered champion, replaced per window; prediction drift in the report."""

import duckdb
import numpy as np
import pytest

from mlinfra_assets import keys
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.runner import run_assets
from mlinfra_assets.stage import SHOWN
from tests.monitoring.conftest import fixture_model, register_champion

FIRST, LAST = "2026-01-20", "2026-01-31"


@pytest.fixture(scope="module")
def scored(shifted):
    spec, resources = shifted
    version = register_champion(resources, spec, fixture_model(spec, resources["warehouse"].path))
    result = run_assets(spec, resources, selection=[keys.PREDICTIONS], first=FIRST, last=LAST)
    return spec, resources, version, result


def read(path: str, sql: str):
    return Warehouse(path=path).query_df(sql)


def test_predictions_score_the_window_with_the_champion(scored):
    spec, resources, version, result = scored
    path = resources["warehouse"].path
    preds = read(path, "SELECT * FROM monitoring.predictions")
    raw = read(
        path,
        f"SELECT count(*) AS n FROM raw.transactions WHERE _partition BETWEEN '{FIRST}' AND '{LAST}'",
    )
    assert len(preds) == raw["n"][0] > 0
    assert preds["_partition"].min().strftime("%Y-%m-%d") == FIRST
    assert (preds["_model_version"] == version).all()
    probs = preds[spec.prob_columns].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (preds["_prediction"].to_numpy() == probs.argmax(axis=1)).all()
    metadata = result.asset_materializations_for_node("monitoring__predictions")[-1].metadata
    assert metadata["model_version"].value == version
    assert metadata["rows_in_window"].value == len(preds)
    assert metadata["mean_score"].value == pytest.approx(preds["prob_fraud"].mean(), rel=SHOWN)
    # a re-run of part of the window replaces those days only
    run_assets(spec, resources, selection=[keys.PREDICTIONS], first=LAST, last=LAST)
    again = read(path, "SELECT _row_id, count(*) AS n FROM monitoring.predictions GROUP BY _row_id")
    assert len(again) == len(preds) and (again["n"] == 1).all()


def test_drift_report_compares_predictions_with_reference_scores(scored):
    spec, resources, version, _ = scored
    result = run_assets(spec, resources, selection=[keys.DRIFT_REPORT], first=FIRST, last=LAST)
    metadata = result.asset_materializations_for_node("monitoring__drift_report")[-1].metadata
    assert metadata["prediction_model_version"].value == version
    path = resources["warehouse"].path
    rows = read(
        path, "SELECT * FROM monitoring.drift_report WHERE kind = 'prediction' ORDER BY _partition"
    )
    per_day = read(
        path, "SELECT _partition, count(*) AS n FROM monitoring.predictions GROUP BY 1 ORDER BY 1"
    )
    assert rows["feature"].unique().tolist() == ["prob_fraud"]
    assert rows["current_rows"].tolist() == per_day["n"].tolist()
    assert rows["psi"].notna().all() and rows["ks_pvalue"].between(0, 1).all()
    assert metadata["prediction_psi"].value == pytest.approx(rows["psi"].max(), rel=SHOWN)


def test_realized_metric_once_annotations_arrive(scored):
    from sklearn.metrics import f1_score

    spec, resources, version, _ = scored
    path = resources["warehouse"].path
    con = duckdb.connect(path)
    con.execute("CREATE SCHEMA IF NOT EXISTS labeling")
    con.execute(  # annotations for every other row of two days; the rest of the window has none
        "CREATE OR REPLACE TABLE labeling.gold_labels AS SELECT txn_id AS row_id, label, 1 AS n_annotations "
        "FROM oracle.labels JOIN raw.transactions USING (txn_id) "
        "WHERE _partition IN ('2026-01-21', '2026-01-25') AND txn_id % 2 = 0"
    )
    con.close()
    try:
        result = run_assets(spec, resources, selection=[keys.DRIFT_REPORT], first=FIRST, last=LAST)
    finally:
        con = duckdb.connect(path)
        con.execute("DROP TABLE labeling.gold_labels")
        con.close()
    rows = read(path, "SELECT * FROM monitoring.drift_report WHERE kind = 'performance' ORDER BY _partition")
    assert rows["feature"].unique().tolist() == ["f1_fraud"]  # the spec's metric: F1 of the positive class
    assert rows["_partition"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-21", "2026-01-25"]
    assert not rows["drifted"].any()
    truth = read(
        path,
        "SELECT p._partition, p._prediction AS prediction, o.label FROM monitoring.predictions p "
        "JOIN oracle.labels o ON CAST(o.txn_id AS VARCHAR) = p._row_id "
        "WHERE p._partition IN ('2026-01-21', '2026-01-25') AND o.txn_id % 2 = 0",
    )
    for (_, row), (_, day) in zip(rows.iterrows(), truth.groupby("_partition"), strict=True):
        assert row["labeled_rows"] == len(day)
        expected = f1_score(day["label"], day["prediction"], pos_label=1, zero_division=np.nan)
        assert row["realized_metric"] == pytest.approx(expected, nan_ok=True)
    metadata = result.asset_materializations_for_node("monitoring__drift_report")[-1].metadata
    assert metadata["labeled_rows"].value == rows["labeled_rows"].sum()


def test_performance_estimates_each_partition_and_sets_the_realized_figure_beside_it(scored):
    spec, resources, version, _ = scored
    path = resources["warehouse"].path
    preds = read(path, "SELECT * FROM monitoring.predictions")
    # the stand-in champion has no calibration: its calibrated probabilities are its own
    np.testing.assert_allclose(preds[spec.calibrated_columns].to_numpy(), preds[spec.prob_columns].to_numpy())
    con = duckdb.connect(path)
    con.execute("CREATE SCHEMA IF NOT EXISTS labeling")
    con.execute(
        "CREATE OR REPLACE TABLE labeling.gold_labels AS SELECT txn_id AS row_id, label, 1 AS n_annotations "
        "FROM oracle.labels JOIN raw.transactions USING (txn_id) WHERE _partition = '2026-01-22'"
    )
    con.close()
    try:
        result = run_assets(spec, resources, selection=[keys.PERFORMANCE], first=FIRST, last=LAST)
    finally:
        con = duckdb.connect(path)
        con.execute("DROP TABLE labeling.gold_labels")
        con.close()
    table = read(path, "SELECT * FROM monitoring.performance ORDER BY _partition")
    per_day = preds.groupby("_partition").size()
    assert table["rows"].tolist() == per_day.tolist() and (table["model_version"] == version).all()
    assert table["metric"].eq("f1_fraud").all() and table["estimated"].between(0, 1).all()
    assert (table["estimated_low"] <= table["estimated"]).all() and (table["estimated"] <= table["estimated_high"]).all()
    labeled = table[table["labeled_rows"].notna()]
    assert labeled["_partition"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-22"]
    assert labeled["labeled_rows"].iloc[0] == per_day[per_day.index == "2026-01-22"].iloc[0]
    metadata = result.asset_materializations_for_node("monitoring__performance")[-1].metadata
    assert metadata["partitions"].value == len(table)
    assert metadata["estimated"].value == pytest.approx(table["estimated"].iloc[-1], rel=SHOWN)
    assert metadata["realized_partitions"].value == 1
    assert "estimated_vs_realized" in metadata


def test_performance_flags_the_partitions_that_dropped_below_the_holdout_figure(scored):
    spec, resources, version, _ = scored
    path = resources["warehouse"].path
    result = run_assets(spec, resources, selection=[keys.PERFORMANCE], first=FIRST, last=LAST)
    metadata = result.asset_materializations_for_node("monitoring__performance")[-1].metadata
    assert metadata["drop_detected"].value is False and metadata["dropped_partitions"].value == []
    assert metadata["holdout_metric"].value == f"no holdout figure of version(s) {version} in training.evaluation"
    con = duckdb.connect(path)
    con.execute("CREATE SCHEMA IF NOT EXISTS training")
    con.execute(  # a holdout figure the stand-in champion cannot reach on any day
        "CREATE TABLE training.evaluation AS SELECT ? AS model_version, 'overall' AS slice, 'all' AS slice_value, "
        "'f1' AS metric, 0.99 AS value, NULL AS champion_version, 'promote' AS decision, now() AS evaluated_at",
        [version],
    )
    con.close()
    try:
        result = run_assets(spec, resources, selection=[keys.PERFORMANCE], first=FIRST, last=LAST)
    finally:
        con = duckdb.connect(path)
        con.execute("DROP TABLE training.evaluation")
        con.close()
    metadata = result.asset_materializations_for_node("monitoring__performance")[-1].metadata
    table = read(path, "SELECT * FROM monitoring.performance ORDER BY _partition")
    assert metadata["holdout_metric"].value == 0.99 and metadata["drop_detected"].value is True
    assert metadata["dropped_partitions"].value == table["_partition"].dt.strftime("%Y-%m-%d").tolist()
    assert "below the holdout figure 0.990" in metadata["decisions"].value


def test_the_reference_is_the_window_the_champion_recorded(scored):
    """A champion that recorded its training window (days 1-5): the reference is every raw row
    of those days, not training.training_set's partitions, for the features and the scores."""
    from mlinfra_assets.training import registry

    spec, resources, version, _ = scored
    tracker = resources["mlflow"]
    registry.set_training_window(tracker, spec.name, version, ("2026-01-01", "2026-01-05"))
    assert registry.training_window(tracker, spec.name, version) == ("2026-01-01", "2026-01-05")
    try:
        result = run_assets(spec, resources, selection=[keys.DRIFT_REPORT], first=FIRST, last=LAST)
    finally:
        client = registry._client(tracker)
        for tag in registry.WINDOW_TAGS:
            client.delete_model_version_tag(spec.name, version, tag)
    metadata = result.asset_materializations_for_node("monitoring__drift_report")[-1].metadata
    path = resources["warehouse"].path
    days = read(path, "SELECT count(*) AS n FROM raw.transactions WHERE _partition <= DATE '2026-01-05'")["n"][0]
    rows = read(path, "SELECT kind, reference_rows FROM monitoring.drift_report")
    assert set(rows["reference_rows"]) == {days}
    assert set(rows["kind"]) >= {"prediction"}
    assert metadata["reference_rows"].value == days
    assert metadata["reference"].value == f"the partitions champion v{version} was trained on, 2026-01-01 .. 2026-01-05"


def test_a_window_scored_in_batches_is_the_window_scored_at_once(scored):
    """score_window streams the raw rows in Arrow batches: the same rows, probabilities, summary
    and shares as one frame scored whole."""
    from datetime import date, datetime

    import pandas as pd

    from mlinfra_assets.monitoring import scoring

    spec, resources, _, _ = scored
    model = scoring.load_champion(resources["mlflow"], spec)
    start, end, at = date(2026, 1, 20), date(2026, 2, 1), datetime(2026, 2, 1, 12)
    with resources["warehouse"].connect() as con:
        whole = scoring.score(model, spec, scoring.read_window(con, spec, start, end), at)
        batched = scoring.score_window(con, spec, model, start, end, at, table="monitoring.batched", batch_rows=700)
        table = con.execute("SELECT * FROM monitoring.batched ORDER BY _row_id").df()
    assert len(whole) > 3 * 700 and batched.rows == len(whole) == len(table) == len(batched.shown)
    expected = whole.sort_values("_row_id").reset_index(drop=True)
    columns = ["_row_id", *spec.prob_columns, *spec.calibrated_columns, "_prediction", "_model_version"]
    pd.testing.assert_frame_equal(table[columns], expected[columns], check_dtype=False)
    pd.testing.assert_frame_equal(batched.per_partition, scoring.summary(whole, spec), check_dtype=False)
    assert batched.predicted_shares == scoring.predicted_shares(whole, spec)
    assert batched.mean_confidence == pytest.approx(scoring.confidence(whole, spec).mean())
