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
    assert [g[4] for g in got] == [want for _, want in sequence]
    assert got[2][0] == "estimated" and "below the holdout figure 0.600" in got[2][5]
    assert got[3][0] == "realized" and got[4][0] == "realized"
    assert got[5][5].startswith("no figure")
    assert decide(0.1, 0.2, NAN, NAN, holdout=0.6, drop=None)[4:] == (
        False, "thresholds.metric_drop is null: the performance rule is off")
    assert decide(0.1, 0.2, NAN, NAN, holdout=None, drop=0.05)[5].startswith("no holdout figure")


def test_an_estimate_is_compared_with_the_holdouts_estimate_a_realized_figure_with_the_realized_one():
    """A small holdout's realized F1 (0.33 on 22 fraud rows) sits above what the calibrated
    probabilities expect there (0.27); a quiet day estimated at 0.16 with its interval up to
    0.23 dropped against the first, not against the second (the same estimator on both sides)."""
    day = (0.16, 0.23, NAN, NAN)
    assert decide(*day, holdout=0.333, drop=0.05)[4] is True
    kind, value, high, base, dropped, why = decide(*day, holdout=0.333, drop=0.05, expected=0.27)
    assert (kind, base, dropped) == ("estimated", 0.27, False) and "holdout's estimated figure 0.270" in why
    assert decide(*day, holdout=0.333, drop=0.05, expected=0.40)[4] is True  # a real drop still asks
    assert decide(0.2, 0.25, 0.20, 0.26, holdout=0.333, drop=0.05, expected=0.2)[3] == 0.333  # realized: realized


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


def test_a_partition_the_model_was_trained_on_is_not_judged():
    """The in-sample days of the scoring model (its recorded training window) never ask for a
    retrain, however low their figure; the days after the window are judged."""
    days = pd.to_datetime(["2026-01-01", "2026-01-24", "2026-01-25"])
    table = pd.DataFrame({"_partition": days, "model_version": ["1", "1", "1"],
                          "estimated": [0.35, 0.35, 0.35], "estimated_high": [0.40, 0.40, 0.40],
                          "realized_metric": [NAN] * 3, "realized_high": [NAN] * 3})
    out = decisions(table, {"1": 0.50}, 0.05, {"1": ("2026-01-01", "2026-01-24")})
    assert out["dropped"].tolist() == [False, False, True]
    assert out["why"][0] == "not judged: version 1 was trained on this partition (its figures are in-sample)"
    batches = table.assign(_partition=[1, 2, 3])
    assert decisions(batches, {"1": 0.50}, 0.05, {"1": ("1", "2")})["dropped"].tolist() == [False, False, True]
