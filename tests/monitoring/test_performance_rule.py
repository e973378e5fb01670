"""The performance rule of retraining on sequences of figures: a clear drop below the holdout
figure asks, noise and a rule that is off do not; the realized figure wins over the estimate."""

import duckdb
import pandas as pd

from mlinfra_assets.monitoring.performance_rule import decide, decisions, holdout_figures
from tests.monitoring.test_estimation import spec_of

NAN = float("nan")


def test_a_clear_drop_asks_noise_does_not():
    # estimated, its upper bound, realized, its upper bound -> dropped?
    sequence = [
        ((0.55, 0.62, NAN, NAN), False),  # as good as the holdout
        ((0.40, 0.57, NAN, NAN), False),  # low, but a small noisy partition: the interval reaches the floor
        ((0.38, 0.44, NAN, NAN), True),   # clearly below 0.60 - 0.05
        ((0.38, 0.44, 0.58, 0.66), False),  # labels arrived: the realized figure says it is fine
        ((0.58, 0.62, 0.30, 0.41), True),  # the estimate missed a concept shift; the labels did not
        ((NAN, NAN, NAN, NAN), False),  # nothing to judge
    ]
    got = [decide(*figures, holdout=0.60, drop=0.05) for figures, _ in sequence]
    assert [g[3] for g in got] == [want for _, want in sequence]
    assert got[2][0] == "estimated" and "below the holdout figure 0.600" in got[2][4]
    assert got[3][0] == "realized" and got[4][0] == "realized"
    assert got[5][4].startswith("no figure")
    assert decide(0.1, 0.2, NAN, NAN, holdout=0.6, drop=None)[3:] == (
        False, "thresholds.metric_drop is null: the performance rule is off")
    assert decide(0.1, 0.2, NAN, NAN, holdout=None, drop=0.05)[4].startswith("no holdout figure")


def test_each_partition_is_compared_with_the_holdout_figure_of_the_version_that_scored_it():
    spec = spec_of(["legit", "fraud"], "f1")
    con = duckdb.connect()
    con.execute("CREATE SCHEMA training")
    con.execute("""CREATE TABLE training.evaluation AS SELECT * FROM (VALUES
        ('1', 'overall', 'all', 'f1', 0.50, NULL, 'promote', TIMESTAMP '2026-01-01'),
        ('1', 'overall', 'all', 'f1', 0.55, NULL, 'promote', TIMESTAMP '2026-01-02'),
        ('2', 'overall', 'all', 'f1', 0.70, '1', 'promote', TIMESTAMP '2026-01-03'),
        ('2', 'overall', 'all', 'pr_auc', 0.10, '1', 'promote', TIMESTAMP '2026-01-03'),
        ('2', 'channel', 'atm', 'f1', 0.10, '1', 'promote', TIMESTAMP '2026-01-03'))
        t(model_version, slice, slice_value, metric, value, champion_version, decision, evaluated_at)""")
    holdout = holdout_figures(con, spec)
    assert holdout == {"1": 0.55, "2": 0.70}
    table = pd.DataFrame({"_partition": [1, 2, 3], "model_version": ["1", "2", "9"],
                          "estimated": [0.45, 0.45, 0.1], "estimated_high": [0.52, 0.52, 0.2],
                          "realized_metric": [NAN] * 3, "realized_high": [NAN] * 3})
    out = decisions(table, holdout, 0.05)
    assert out["dropped"].tolist() == [False, True, False]
    assert out["holdout"].tolist()[:2] == [0.55, 0.70] and out["why"][2].startswith("no holdout figure")
