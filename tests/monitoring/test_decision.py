"""The drift decision rule: multiple-testing corrections against plain references and scipy, the rule itself."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlinfra_assets.monitoring.decision import adjust_pvalues, flag
from mlinfra_assets.spec import Thresholds

P = np.array([0.01, 0.04, 0.03, 0.005, 0.2, np.nan, 0.5])


def holm_reference(p: list[float]) -> list[float]:
    """Holm's step-down adjustment, written the textbook way."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def test_corrections_match_references():
    ok = ~np.isnan(P)
    holm = adjust_pvalues(P, "holm")
    np.testing.assert_allclose(holm[ok], holm_reference(P[ok].tolist()))
    assert np.isnan(holm[5])
    np.testing.assert_allclose(adjust_pvalues(P, "fdr_bh")[ok], stats.false_discovery_control(P[ok], method="bh"))
    np.testing.assert_allclose(adjust_pvalues(P, "bonferroni")[ok], np.minimum(P[ok] * 6, 1))
    np.testing.assert_allclose(adjust_pvalues(P, "none")[ok], P[ok])
    with pytest.raises(ValueError, match="drift_correction"):
        adjust_pvalues(P, "sidak")


def test_rule_needs_significance_and_effect_or_a_missing_jump():
    day1, day2 = date(2026, 1, 1), date(2026, 1, 2)
    report = pd.DataFrame(
        {
            "_partition": [day1] * 5 + [day2] * 5,
            "feature": ["a", "b", "c", "prob_x", "f1_x"] * 2,
            "kind": ["numeric", "numeric", "categorical", "prediction", "performance"] * 2,
            # day 1: a has a big PSI but an insignificant test (a small day); day 2: a and c drift
            "psi": [0.5, 0.01, 0.01, 0.9, np.nan, 0.5, 0.01, 0.3, 0.0, np.nan],
            "ks_stat": [0.3, 0.02, np.nan, 0.5, np.nan, 0.3, 0.01, np.nan, 0.0, np.nan],
            "ks_pvalue": [0.02, 0.9, np.nan, 1e-9, np.nan, 1e-6, 0.8, np.nan, 0.5, np.nan],
            "chi2_pvalue": [np.nan, np.nan, 0.5, np.nan, np.nan, np.nan, np.nan, 1e-8, np.nan, np.nan],
            "js_divergence": [np.nan, np.nan, 0.0, np.nan, np.nan, np.nan, np.nan, 0.2, np.nan, np.nan],
            "missing_reference": [0.0] * 10,
            "missing_current": [0.0, 0.0, 0.0, 0.0, np.nan, 0.0, 0.5, 0.0, 0.0, np.nan],
        }
    )
    rule = Thresholds(psi_alert=0.2, ks_alert=0.1, drift_share_alert=0.5, drift_alpha=0.01)
    out = flag(report, rule)
    assert out["drifted"].tolist() == [False, False, False, True, False, True, True, True, False, False]
    assert out["partition_drifted"].tolist() == [False] * 5 + [True] * 5
    # Holm over day 2's three features: the smallest p is multiplied by 3
    assert out.loc[7, "p_adjusted"] == pytest.approx(3e-8)
    assert out.loc[6, "missing_change"] == 0.5  # b drifts by its missing share alone
    # without correction, day 1's feature a is significant at alpha 0.05 and drifts
    loose = flag(report, rule.model_copy(update={"drift_alpha": 0.05, "drift_correction": "none"}))
    assert bool(loose.loc[0, "drifted"])
