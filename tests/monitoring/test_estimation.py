"""Performance estimated without labels (confidence-based, in SQL over monitoring.predictions):
the estimate equals the direct computation from the calibrated probabilities, its interval is
the spread of the realized metric when labels follow those probabilities, and
monitoring.performance puts the realized figure beside it."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlinfra_assets.monitoring.estimation import estimated_metric, performance_table, replace_window
from mlinfra_assets.training.metrics import metric_score
from tests.training.tabular import spec_for

ROWS = 1500


def spec_of(classes: list[str], metric: str):
    frame = pd.DataFrame({"item_id": [1], "x": [0.0], "target": [0]})
    return spec_for("t", frame, classes, training={"metric": metric})


def predictions(spec, partitions: int = 2, seed: int = 0) -> pd.DataFrame:
    """Scored rows: the model's probabilities (sharp), its calibrated ones (softer) and its argmax."""
    rng = np.random.default_rng(seed)
    n = ROWS * partitions
    logits = rng.normal(0, 1.5, (n, spec.n_classes)) + np.linspace(0, -1, spec.n_classes)
    raw = np.exp(2 * logits) / np.exp(2 * logits).sum(axis=1, keepdims=True)
    cal = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    frame = pd.DataFrame({"_row_id": [str(i) for i in range(n)], "_partition": np.repeat(np.arange(partitions), ROWS)})
    for k in range(spec.n_classes):
        frame[spec.prob_columns[k]] = raw[:, k]
        frame[spec.calibrated_columns[k]] = cal[:, k]
    frame["_prediction"] = raw.argmax(axis=1).astype("int32")
    frame["_model_version"] = "4"
    return frame


def direct(spec, cal: np.ndarray, pred: np.ndarray) -> float:
    """The expected confusion counts of each class from the calibrated probabilities, then the metric."""
    if spec.metric == "accuracy":
        return float(cal[np.arange(len(pred)), pred].mean())
    f1 = []
    for k in range(spec.n_classes):
        tp = cal[pred == k, k].sum()
        fp = (1 - cal[pred == k, k]).sum()
        fn = cal[pred != k, k].sum()
        f1.append(2 * tp / (2 * tp + fp + fn))
    return float(f1[spec.positive_index] if spec.metric == "f1" else np.mean(f1))


def warehouse(frame: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA monitoring")
    con.register("_frame", frame)
    con.execute("CREATE TABLE monitoring.predictions AS SELECT * FROM _frame")
    con.unregister("_frame")
    return con


@pytest.mark.parametrize(("classes", "metric"), [
    (["legit", "fraud"], "f1"), (["a", "b", "c"], "macro_f1"), (["a", "b", "c"], "accuracy"),
])
def test_the_estimate_is_the_direct_computation_and_its_interval_the_labels_spread(classes, metric):
    spec = spec_of(classes, metric)
    frame = predictions(spec)
    table = estimated_metric(warehouse(frame), spec, 0, 2)
    assert table["_partition"].tolist() == [0, 1] and (table["rows"] == ROWS).all()
    assert (table["model_version"] == "4").all()
    rng = np.random.default_rng(1)
    for row, (_, part) in zip(table.itertuples(), frame.groupby("_partition"), strict=True):
        cal, pred = part[spec.calibrated_columns].to_numpy(), part["_prediction"].to_numpy()
        assert row.estimated == pytest.approx(direct(spec, cal, pred), abs=1e-9)
        # labels drawn from the calibrated probabilities: the realized metric centres on the
        # estimate and spreads as wide as the interval says
        draws = []
        for _ in range(300):
            labels = (cal.cumsum(axis=1) > rng.random((len(cal), 1))).argmax(axis=1)
            draws.append(metric_score(spec.metric, labels, pred, spec.n_classes, spec.positive_index))
        assert np.mean(draws) == pytest.approx(row.estimated, abs=0.01)
        sd = (row.estimated_high - row.estimated_low) / (2 * 1.96)
        assert np.std(draws) == pytest.approx(sd, rel=0.2), (np.std(draws), sd)


def test_performance_puts_the_realized_metric_beside_the_estimate():
    spec = spec_of(["legit", "fraud"], "f1")
    frame = predictions(spec)
    con = warehouse(frame)
    con.execute("CREATE SCHEMA labeling")
    # partition 1: 200 annotated rows; partition 0: 10, fewer than thresholds.min_labeled_rows
    con.execute("CREATE TABLE labeling.gold_labels AS SELECT _row_id AS row_id, "
                "CASE WHEN prob_fraud > 0.5 THEN 1 ELSE 0 END AS label, 1 AS n_annotations "
                "FROM monitoring.predictions WHERE (_partition = 1 AND CAST(_row_id AS INT) % 7 = 0) "
                "OR (_partition = 0 AND CAST(_row_id AS INT) < 10)")
    table = performance_table(con, spec, 0, 2).set_index("_partition")
    assert table["metric"].eq("f1_fraud").all()
    assert table.loc[0, "labeled_rows"] == 10 and np.isnan(table.loc[0, "realized_metric"])
    assert table.loc[0, "realized_note"].startswith("too few labels")
    assert table.loc[1, "labeled_rows"] == len(frame[(frame._partition == 1) & (frame._row_id.astype(int) % 7 == 0)])
    assert table.loc[1, "realized_metric"] == 1.0  # the labels are the model's own decisions
    assert table["estimated"].between(0, 1).all()
    replace_window(con, spec, 0, 2, table.reset_index())
    replace_window(con, spec, 1, 2, table.reset_index().iloc[1:])
    stored = con.execute("SELECT _partition, count(*) AS n FROM monitoring.performance GROUP BY 1 ORDER BY 1").df()
    assert stored["n"].tolist() == [1, 1]


def test_predictions_scored_before_calibration_give_no_estimate_not_a_number():
    spec = spec_of(["a", "b", "c"], "macro_f1")
    frame = predictions(spec)
    frame.loc[frame["_partition"] == 1, spec.calibrated_columns] = np.nan  # NULL in DuckDB
    table = estimated_metric(warehouse(frame), spec, 0, 2).set_index("_partition")
    assert np.isfinite(table.loc[0, ["estimated", "estimated_low", "estimated_high"]].astype(float)).all()
    assert table.loc[1, ["estimated", "estimated_low", "estimated_high"]].isna().all()
    assert table.loc[1, "rows"] == ROWS
