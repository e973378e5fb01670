"""Privacy of synthetic rows: exact copies, the DCR ratio, sdmetrics' DCR metrics (Dagster-free).

DCR (distance to the closest record) of a row is its distance to the nearest fit row
(sdmetrics' `calculate_dcr`: numeric gaps scaled by the column range, categories 0/1,
averaged over the columns). A synthesizer that memorizes puts its rows closer to the fit rows
than unseen real rows are; the DCR ratio is the median DCR of synthetic rows over the median
DCR of real holdout rows (never fit on) of the same class mix: under
`synthetic.privacy.min_dcr_ratio` the rows are blocked.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlinfra_assets.synthetic.columns import TABLE
from mlinfra_assets.synthetic.data import LABEL

EPS = 1e-12


@dataclass(frozen=True)
class PrivacyResult:
    exact_matches: int
    synthetic_dcr: float  # median
    holdout_dcr: float  # median
    dcr_ratio: float
    overfitting_protection: float  # sdmetrics DCROverfittingProtection (1 = no row closer to fit rows)
    closer_to_training: float  # share of synthetic rows closer to the fit rows than to the holdout
    baseline_protection: float  # sdmetrics DCRBaselineProtection (1 = as far as random data)
    rows: int

    def problems(self, min_ratio: float) -> list[str]:
        found = []
        if self.exact_matches:
            found.append(f"{self.exact_matches} synthetic rows equal a real row on every feature")
        if not self.dcr_ratio >= min_ratio:
            found.append(
                f"DCR ratio {self.dcr_ratio:.3f} < synthetic.privacy.min_dcr_ratio {min_ratio}: synthetic "
                "rows sit closer to the fit rows than real holdout rows do"
            )
        return found

    def scores(self) -> pd.DataFrame:
        figures = {
            "Exact Matches": self.exact_matches, "DCR Synthetic Median": self.synthetic_dcr,
            "DCR Holdout Median": self.holdout_dcr, "DCR Ratio": self.dcr_ratio,
            "DCR Overfitting Protection": self.overfitting_protection,
            "Closer To Training Share": self.closer_to_training,
            "DCR Baseline Protection": self.baseline_protection,
        }
        return pd.DataFrame(
            [{"metric": "privacy", "property": k, "column_name": None, "score": float(v)} for k, v in figures.items()]
        )


def matched(frame: pd.DataFrame, mix: pd.Series, rows: int, seed: int) -> pd.DataFrame:
    """A deterministic sample of `frame` with the class shares of `mix`, at most `rows` rows."""
    shares = mix / mix.sum()
    parts = []
    for label, share in shares.items():
        pool = frame[frame[LABEL] == label]
        parts.append(pool.sample(min(len(pool), max(1, round(rows * share))), random_state=seed))
    return pd.concat(parts, ignore_index=True)


def evaluate(
    synthetic: pd.DataFrame, fit_rows: pd.DataFrame, holdout: pd.DataFrame, metadata: Any,
    exact_matches: int, rows: int, seed: int = 0,
) -> PrivacyResult:
    """Compare synthetic rows and real holdout rows by their distance to the fit rows.

    Parameters
    ----------
    synthetic, fit_rows, holdout
        Frames with the modeled columns and `label` (class names); fit_rows are the synthesizer's
        training rows, holdout real rows it never saw.
    metadata
        The synthesizer's SDV metadata (which columns are numerical or categorical).
    exact_matches
        Synthetic rows equal to a real row on every feature (counted in the warehouse).
    rows
        Rows compared per side (`synthetic.privacy.rows`).
    """
    from sdmetrics.single_table import DCRBaselineProtection, DCROverfittingProtection
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    columns = list(metadata.tables[TABLE].columns)
    md = metadata.to_dict()["tables"][TABLE]
    mix = synthetic[LABEL].value_counts()
    syn = matched(synthetic[columns], mix, rows, seed)
    hold = matched(holdout[columns], mix, rows, seed)
    train = fit_rows.loc[fit_rows[LABEL].isin(mix.index), columns]
    if syn.empty or hold.empty or train.empty:
        raise ValueError(
            f"privacy needs synthetic, holdout and fit rows of the classes {list(mix.index)}: "
            f"found {len(syn)}, {len(hold)}, {len(train)}"
        )
    syn_dcr = calculate_dcr(dataset=syn, reference_dataset=train, metadata=md)
    hold_dcr = calculate_dcr(dataset=hold, reference_dataset=train, metadata=md)
    ratio = (float(syn_dcr.median()) + EPS) / (float(hold_dcr.median()) + EPS)
    n = min(len(syn), len(hold), len(train))
    np.random.seed(seed)  # sdmetrics subsamples with numpy's global generator
    with warnings.catch_warnings():  # sdmetrics warns on unequal sizes: we subsample equal ones
        warnings.simplefilter("ignore")
        overfit = DCROverfittingProtection.compute_breakdown(
            train, syn, hold, md, TABLE, num_rows_subsample=n if n < max(len(syn), len(train)) else None
        )
        baseline = DCRBaselineProtection.compute(train, syn, md, TABLE)
    return PrivacyResult(
        exact_matches=exact_matches,
        synthetic_dcr=float(syn_dcr.median()),
        holdout_dcr=float(hold_dcr.median()),
        dcr_ratio=ratio,
        overfitting_protection=float(overfit["score"]),
        closer_to_training=float(overfit["synthetic_data_percentages"]["closer_to_training"]),
        baseline_protection=float(baseline),
        rows=len(syn),
    )
