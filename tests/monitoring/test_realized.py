"""The realized metric: only labeled rows that were not training rows count, with their number,
the training rows left out and a 95% bootstrap interval; below thresholds.min_labeled_rows it is
"too few labels", not a number."""

import duckdb
import numpy as np
import pytest
from sklearn.metrics import f1_score

from mlinfra_assets.monitoring.performance import realized_metric
from tests.conftest import small_spec


def warehouse(labeled_per_day: dict[str, int], trained: set[int]) -> duckdb.DuckDBPyConnection:
    rng = np.random.default_rng(3)
    con = duckdb.connect()
    for schema in ("monitoring", "labeling", "training"):
        con.execute(f"CREATE SCHEMA {schema}")
    rows = []
    for day, n in labeled_per_day.items():
        for i in range(n):
            label = int(rng.random() < 0.4)
            predicted = label if rng.random() < 0.8 else 1 - label
            rows.append((f"{day}-{i}", day, predicted, label))
    con.execute("CREATE TABLE t (row_id VARCHAR, day DATE, predicted INTEGER, label INTEGER)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    con.execute("CREATE TABLE monitoring.predictions AS SELECT row_id AS _row_id, day AS _partition, "
                "predicted AS _prediction, '1' AS _model_version FROM t")
    con.execute("CREATE TABLE labeling.gold_labels AS SELECT row_id, label FROM t")
    ids = [r[0] for i, r in enumerate(rows) if i in trained]
    con.execute("CREATE TABLE training.training_set (_row_id VARCHAR)")
    con.executemany("INSERT INTO training.training_set VALUES (?)", [(i,) for i in ids])
    return con


def test_training_rows_are_left_out_and_the_figure_has_an_interval():
    spec = small_spec()
    con = warehouse({"2026-01-21": 200}, trained=set(range(0, 200, 4)))  # a quarter were training rows
    [row] = realized_metric(con, spec, "2026-01-21", "2026-01-22").itertuples()
    assert row.labeled_rows == 150 and row.labeled_training_rows == 50 and row.realized_note is None
    kept = con.execute("SELECT _prediction, label FROM monitoring.predictions p JOIN labeling.gold_labels g "
                       "ON g.row_id = p._row_id WHERE p._row_id NOT IN (SELECT _row_id FROM training.training_set)"
                       ).fetchnumpy()
    assert row.realized_metric == pytest.approx(f1_score(kept["label"], kept["_prediction"]))
    assert row.realized_low < row.realized_metric < row.realized_high
    assert row.realized_high - row.realized_low < 0.3


def test_too_few_labels_is_not_a_number():
    spec = small_spec()
    assert spec.thresholds.min_labeled_rows == 30
    con = warehouse({"2026-01-21": 40, "2026-01-22": 12}, trained=set(range(0, 40, 2)))
    rows = realized_metric(con, spec, "2026-01-21", "2026-01-23").set_index("labeled_rows")
    assert sorted(rows.index) == [12, 20]  # 40 labeled, 20 of them training rows; 12 labeled
    for n in (12, 20):
        assert np.isnan(rows.loc[n, "realized_metric"]) and np.isnan(rows.loc[n, "realized_low"])
        assert rows.loc[n, "realized_note"].startswith(f"too few labels: {n} labeled rows")
