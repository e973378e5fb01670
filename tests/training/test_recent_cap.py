"""The decision capped on the latest scored partitions: a retrain flags at most
`prevalence_factor` x the positive share the champion's calibrated probabilities expect there."""

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlinfra_assets.holdout import holdout_predicate
from mlinfra_assets.training import dataset, decision
from mlinfra_assets.training.batches import Recent
from mlinfra_assets.training.trainer import TrainConfig, train
from tests.training.conftest import training_spec
from tests.training.test_trainer import _frame

QUIET = lambda _: None  # noqa: E731 - the training log, unread


def test_cap_lowers_a_shift_to_flag_the_factor_times_the_share_and_never_raises_one():
    margins = np.linspace(-5.0, 5.0, 1001)  # flagged: margin + shift > 0
    capped = decision.cap_to_recent(4.0, margins, share=0.1, factor=1.5)
    assert np.mean(margins + capped > 0) == pytest.approx(0.15, abs=0.002)
    assert decision.cap_to_recent(-4.5, margins, share=0.1, factor=1.5) == -4.5  # flags 5%: left alone
    assert decision.cap_to_recent(4.0, np.array([]), share=0.1, factor=1.5) == 4.0
    assert decision.cap_to_recent(4.0, margins, share=float("nan"), factor=1.5) == 4.0


def _shifted(n: int, seed: int) -> pd.DataFrame:
    """Recent rows after a covariate shift: amounts up, more online; features only."""
    rows = _frame(n, seed).drop(columns=["_prob_legit", "_prob_fraud", "_label", "_source", "_weight"])
    rows["amount"] += 1.0
    return rows


def test_a_decision_that_flags_too_many_recent_rows_is_lowered_and_the_figures_follow():
    spec = training_spec(batch_size=128, epochs=3)
    df = _frame().assign(_source="weak", _weight=0.5)  # no gold: the decision flags the weak positive share
    cfg = TrainConfig.from_spec(spec)
    free = train(df, spec, cfg, log=QUIET)
    recent_rows = _shifted(4000, seed=1)
    flagged_free = np.mean(free.model.predict_proba(recent_rows).argmax(1) == 1)
    share = flagged_free / 4  # the champion expects a quarter of what the free decision flags
    capped = train(df, spec, cfg, log=QUIET, recent=Recent(recent_rows, share, "partitions a .. b"))
    flagged = np.mean(capped.model.predict_proba(recent_rows).argmax(1) == 1)
    assert flagged == pytest.approx(share * cfg.prevalence_factor, abs=0.002)
    assert capped.recent.flagged_share == pytest.approx(flagged, abs=1e-9)
    assert capped.recent.lowered_by > 0 and capped.decision_shift == pytest.approx(free.decision_shift - capped.recent.lowered_by)
    assert "lowered by" in capped.decision and "partitions a .. b" in capped.decision
    # the validation figures are those of the lowered decision
    assert np.allclose(capped.val_probs.sum(axis=1), 1.0)
    assert capped.val_probs[:, 1].mean() < free.val_probs[:, 1].mean()
    assert capped.best_val_f1 == pytest.approx(
        np.sum((capped.val_probs.argmax(1) == 1) & (capped.val_labels == 1)) * 2
        / (np.sum(capped.val_probs.argmax(1) == 1) + np.sum(capped.val_labels == 1)))

    roomy = train(df, spec, cfg, log=QUIET, recent=Recent(recent_rows, min(flagged_free, 0.6), "partitions a .. b"))
    assert roomy.recent.lowered_by == 0.0 and str(roomy.recent.lowered_by) == "0.0"  # not -0.0 in the UI
    assert roomy.decision_shift == pytest.approx(free.decision_shift)
    assert roomy.recent.flagged_share == pytest.approx(flagged_free, abs=1e-9) and "lowered" not in roomy.decision


def test_three_classes_are_never_capped():
    spec = training_spec(batch_size=128, epochs=2)
    df = _frame()
    three = spec.model_copy(update={"classes": ["legit", "fraud", "other"]})
    assert dataset.recent_rows(duckdb.connect(), three).where.endswith("3 classes take the argmax")
    result = train(df, spec, TrainConfig.from_spec(spec, tune_decision=False), log=QUIET,
                   recent=Recent(_shifted(500, 2), 0.001, "partitions a .. b"))
    assert result.recent is None and result.decision_shift == 0.0


@pytest.fixture
def scored(warehouse_resources: dict, tmp_path) -> tuple[duckdb.DuckDBPyConnection, list[date]]:
    """A copy of the training warehouse's raw table with monitoring.predictions on its last
    days: calibrated 0.02 on the last three, 0.5 before, NULL (scored before calibration) on
    the very last."""
    con = duckdb.connect(str(tmp_path / "copy.duckdb"))
    con.execute(f"ATTACH '{warehouse_resources['warehouse'].path}' AS src (READ_ONLY)")
    con.execute("CREATE SCHEMA raw; CREATE TABLE raw.transactions AS SELECT * FROM src.raw.transactions")
    con.execute("DETACH src")
    days = [d for (d,) in con.execute("SELECT DISTINCT _partition FROM raw.transactions ORDER BY 1").fetchall()]
    con.execute("CREATE SCHEMA monitoring")
    con.execute(
        "CREATE TABLE monitoring.predictions AS SELECT CAST(txn_id AS VARCHAR) AS _row_id, _partition, "
        "CASE WHEN _partition = ?::DATE THEN NULL WHEN _partition >= ?::DATE THEN 0.02 ELSE 0.5 END AS calibrated_fraud "
        "FROM raw.transactions WHERE _partition >= ?::DATE", [days[-1], days[-4], days[-8]])
    return con, days


def test_recent_rows_are_the_latest_calibrated_partitions_without_holdout_rows(scored):
    con, days = scored
    spec = training_spec()
    recent = dataset.recent_rows(con, spec)
    assert recent.positive_share == pytest.approx(0.02)
    assert recent.where.startswith(f"partitions {days[-4]} .. {days[-2]} (")
    outside = con.execute(
        f"SELECT count(*) FROM raw.transactions r WHERE _partition BETWEEN ?::DATE AND ?::DATE "
        f"AND NOT {holdout_predicate(spec, 'r.txn_id')}", [days[-4], days[-2]]).fetchall()[0][0]
    assert len(recent.rows) == outside and list(recent.rows.columns) == spec.feature_columns
    sample = dataset.recent_rows(con, spec, limit=50)
    assert len(sample.rows) == 50
    assert sample.rows.equals(dataset.recent_rows(con, spec, limit=50).rows)  # seeded: the same rows again
    one = training_spec(recent_partitions=1)
    assert dataset.recent_rows(con, one).where.startswith(f"partitions {days[-2]} (")
    assert dataset.recent_rows(con, training_spec(recent_partitions=0)).where == \
        "not capped: training.recent_partitions is 0"


def test_without_predictions_nothing_is_capped_and_the_reason_says_so(warehouse_resources):
    con = duckdb.connect(warehouse_resources["warehouse"].path, read_only=True)
    try:
        recent = dataset.recent_rows(con, training_spec())
    finally:
        con.close()
    assert recent.rows.empty and "no calibrated predictions in monitoring.predictions" in recent.where
