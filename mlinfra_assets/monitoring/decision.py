"""The drift decision rule: which features drift, and which days, corrected for many tests.

A feature drifts on a day when its test (KS for numerics, chi-squared for categoricals) is
significant at `drift_alpha` after the correction named by `drift_correction` over that
day's features, and its effect is large enough (PSI > psi_alert, or KS > ks_alert, or JS >
js_alert); or when its share of missing values moved by more than missing_rate_alert. A day
drifts when the share of its drifted features exceeds drift_share_alert. The prediction row
is judged on its own (no correction) and is not counted in the share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlinfra_assets.spec import Thresholds

FEATURE_KINDS = ("numeric", "categorical")


def adjust_pvalues(pvalues: np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values for a family of tests; NaN stays NaN and is not counted.

    Parameters
    ----------
    pvalues : raw p-values of one family (one day's features)
    method : "holm" (step-down, controls the family-wise error), "bonferroni", "fdr_bh"
        (Benjamini-Hochberg, controls the false discovery rate) or "none"
    """
    p = np.asarray(pvalues, dtype="float64")
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    q = p[ok]
    if method == "none":
        adj = q
    elif method == "bonferroni":
        adj = q * m
    elif method == "holm":
        order = np.argsort(q)
        steps = np.maximum.accumulate(q[order] * (m - np.arange(m)))
        adj = np.empty(m)
        adj[order] = steps
    elif method == "fdr_bh":
        order = np.argsort(q)[::-1]
        steps = np.minimum.accumulate(q[order] * m / (m - np.arange(m)))
        adj = np.empty(m)
        adj[order] = steps
    else:
        raise ValueError(
            f"thresholds.drift_correction {method!r} is unknown: use holm, bonferroni, fdr_bh or none"
        )
    out[ok] = np.minimum(adj, 1.0)
    return out


def flag(report: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """Add `p_value`, `p_adjusted`, `missing_change`, `drifted` and `partition_drifted`."""
    report = report.copy()
    for col in ("ks_stat", "ks_pvalue", "chi2_pvalue", "js_divergence", "missing_reference",
                "missing_current"):
        if col not in report:
            report[col] = np.nan
    categorical = report["kind"] == "categorical"
    report["p_value"] = np.where(categorical, report["chi2_pvalue"], report["ks_pvalue"])
    report["p_adjusted"] = np.nan
    features = report["kind"].isin(FEATURE_KINDS)
    for _, index in report[features].groupby("_partition").groups.items():
        report.loc[index, "p_adjusted"] = adjust_pvalues(
            report.loc[index, "p_value"].to_numpy(), thresholds.drift_correction
        )
    report.loc[~features, "p_adjusted"] = report.loc[~features, "p_value"]
    effect = (
        (report["psi"].fillna(0.0) > thresholds.psi_alert)
        | (report["ks_stat"].fillna(0.0) > thresholds.ks_alert)
        | (report["js_divergence"].fillna(0.0) > thresholds.js_alert)
    )
    significant = report["p_adjusted"].fillna(1.0) < thresholds.drift_alpha
    report["missing_change"] = report["missing_current"] - report["missing_reference"]
    missing = report["missing_change"].abs().fillna(0.0) > thresholds.missing_rate_alert
    report["drifted"] = ((effect & significant) | missing) & report["kind"].ne("performance")
    share = report[features].groupby("_partition")["drifted"].mean()
    flagged = share > thresholds.drift_share_alert
    report["partition_drifted"] = report["_partition"].map(flagged).fillna(False).astype(bool)
    return report
