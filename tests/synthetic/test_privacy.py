"""Privacy figures on data with duplicate rows: finite, and still failing a synthesizer that copies."""

import numpy as np
import pandas as pd
import pytest

from mlinfra_assets.spec import SyntheticPrivacy
from mlinfra_assets.synthetic import privacy
from mlinfra_assets.synthetic.columns import build_metadata
from mlinfra_assets.synthetic.privacy import DCR_FLOOR, PrivacyResult
from tests.synthetic.test_inputs import _frame, _spec


def _evaluate(synthetic, fit_rows, holdout, copy_share=0.0):
    spec = _spec()
    metadata = build_metadata(fit_rows, spec)
    return privacy.evaluate(synthetic, fit_rows, holdout, metadata, exact_matches=0, rows=300,
                            exact_copy_share=copy_share, features=spec.feature_columns)


def _nudged(frame: pd.DataFrame, scale: float, seed: int) -> pd.DataFrame:
    """Rows of `frame` with every numeric gap-scaled feature moved by `scale` of its value."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for column in ["amount", "amount_vs_avg", "txn_count_1h", "distance_km", "account_age_days"]:
        out[column] = (out[column] * (1 + rng.normal(0, scale, len(out)))).round(4)
    return out


def test_dcr_is_finite_when_the_holdout_duplicates_the_fit_rows():
    distinct = _frame(40, seed=1)
    fit_rows = pd.concat([distinct] * 10, ignore_index=True)  # every row 10 times
    holdout = distinct.sample(30, random_state=2).reset_index(drop=True)  # unseen, yet equal to fit rows
    fresh = _frame(300, seed=3)  # a synthesizer that learned the distribution, copying nothing
    result = _evaluate(fresh, fit_rows, holdout)
    assert result.holdout_dcr == 0 and result.holdout_copy_share == 1.0  # the old ratio was ~1e10 here
    assert np.isfinite(result.dcr_ratio) and result.synthetic_dcr > DCR_FLOOR
    assert result.dcr_ratio == pytest.approx(result.synthetic_dcr / DCR_FLOOR)
    assert result.closer_share == 0.0  # every fresh row is farther from the fit rows than the holdout
    assert not result.problems(SyntheticPrivacy().min_dcr_ratio)
    copier = fit_rows.sample(300, random_state=4, replace=True)  # hands back fit rows
    copied = _evaluate(copier, fit_rows, holdout, copy_share=1.0)
    assert copied.synthetic_dcr == 0 and copied.dcr_ratio == 1.0  # as close as the duplicated holdout
    assert copied.closer_share == 0.5 and copied.exact_copy_share == 1.0 and copied.holdout_copy_share == 1.0
    for figure in (result, copied):
        assert 0 <= figure.overfitting_protection <= 1 and 0 <= figure.baseline_protection <= 1


def test_near_copies_fail_the_dcr_gate_on_distinct_rows():
    fit_rows = _frame(400, seed=5)
    holdout = _frame(200, seed=6)
    near = _nudged(fit_rows.sample(300, random_state=7), 0.001, seed=8)  # memorized, barely moved
    result = _evaluate(near, fit_rows, holdout)
    assert result.holdout_copy_share == 0.0 and result.holdout_dcr > DCR_FLOOR
    assert result.dcr_ratio < 0.8 and result.closer_share > 0.9
    [problem] = result.problems(SyntheticPrivacy().min_dcr_ratio)
    assert f"DCR ratio {result.dcr_ratio:.3f} < synthetic.privacy.min_dcr_ratio 0.8" in problem
    fresh = _evaluate(_frame(300, seed=9), fit_rows, holdout)
    assert fresh.dcr_ratio >= 0.8 and 0.2 < fresh.closer_share < 0.8 and not fresh.problems(SyntheticPrivacy().min_dcr_ratio)


def test_privacy_needs_holdout_rows_of_every_sampled_class():
    fit_rows = _frame(200, seed=1)
    holdout = fit_rows[fit_rows["_label"] == "legit"].head(50)
    with pytest.raises(ValueError, match=r"privacy needs real holdout rows of every sampled class: none of class 'fraud'"):
        _evaluate(_frame(100, seed=2), fit_rows, holdout)


def test_privacy_problems_name_copies_and_the_dcr_ratio():
    figures = dict(exact_copy_share=0.0, holdout_copy_share=0.0, synthetic_dcr=0.01, holdout_dcr=0.05,
                   closer_share=0.7, overfitting_protection=0.5, closer_to_training=0.7,
                   baseline_protection=0.3, rows=100)
    problems = PrivacyResult(exact_matches=2, dcr_ratio=0.2, **figures).problems(min_ratio=SyntheticPrivacy().min_dcr_ratio)
    assert problems[0] == "2 synthetic rows equal a real row on every feature"
    assert "DCR ratio 0.200 < synthetic.privacy.min_dcr_ratio 0.8" in problems[1]
    assert not PrivacyResult(exact_matches=0, dcr_ratio=1.0, **figures).problems(SyntheticPrivacy().min_dcr_ratio)


def _mixed(n: int, seed: int) -> pd.DataFrame:
    """Every kind of column DCR measures, with missing values and a constant column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "amount": rng.gamma(2.0, 30.0, n).round(1),
        "count": rng.integers(0, 5, n).astype(float),
        "flat": np.full(n, 3.0),
        "channel": rng.choice(["web", "pos", "atm"], n).astype(object),
        "flag": rng.random(n) < 0.3,
        "seen": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, n), unit="s"),
        "_label": rng.choice(["legit", "fraud"], n, p=[0.8, 0.2]).astype(object),
    })
    frame.loc[rng.random(n) < 0.1, "amount"] = np.nan
    frame.loc[rng.random(n) < 0.1, "channel"] = None
    frame.loc[rng.random(n) < 0.1, "seen"] = pd.NaT
    return frame


MIXED_METADATA = {"columns": {
    "amount": {"sdtype": "numerical"}, "count": {"sdtype": "numerical"}, "flat": {"sdtype": "numerical"},
    "channel": {"sdtype": "categorical"}, "flag": {"sdtype": "boolean"}, "seen": {"sdtype": "datetime"},
    "_label": {"sdtype": "categorical"},
}}


def test_the_vectorized_dcr_and_its_metrics_equal_sdmetrics(monkeypatch):
    """synthetic/dcr.py computes sdmetrics' DCR definition in numpy blocks: the same distances as
    `calculate_dcr` (past its 1,000-row chunks and across several of ours), and the same
    DCROverfittingProtection and (seeded) DCRBaselineProtection."""
    from sdmetrics.single_table import DCRBaselineProtection, DCROverfittingProtection
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    from mlinfra_assets.synthetic import dcr

    synthetic, train, holdout = _mixed(150, 1), _mixed(1100, 2), _mixed(400, 3)
    monkeypatch.setattr(dcr, "BLOCK_CELLS", 50_000)  # several blocks of 45 rows
    ours = dcr.dcr(synthetic, train, MIXED_METADATA)
    theirs = calculate_dcr(dataset=synthetic, reference_dataset=train, metadata=MIXED_METADATA).to_numpy(dtype=float)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert 0 < ours.min() and ours.max() <= 1

    np.random.seed(5)
    expected = DCROverfittingProtection.compute_breakdown(train, synthetic, holdout, MIXED_METADATA, None,
                                                          num_rows_subsample=150)
    score, closer = dcr.overfitting_protection(train, synthetic, holdout, MIXED_METADATA, 150, seed=5)
    assert score == pytest.approx(expected["score"], abs=1e-12)
    assert closer == pytest.approx(expected["synthetic_data_percentages"]["closer_to_training"], abs=1e-12)

    class Seeded(DCRBaselineProtection):
        _seed = 9

    np.random.seed(9)
    baseline = Seeded.compute(train, synthetic, MIXED_METADATA, None)
    assert dcr.baseline_protection(train, ours, len(synthetic), MIXED_METADATA, seed=9) == pytest.approx(baseline, abs=1e-12)
