"""Privacy of synthetic rows: exact copies, the DCR ratio, sdmetrics' DCR metrics (Dagster-free).

DCR (distance to the closest record) of a row is its distance to the nearest fit row
(sdmetrics' `calculate_dcr` definition, computed in numpy blocks by synthetic/dcr.py: numeric
gaps scaled by the column range, categories 0/1, averaged over the columns, so a DCR lies in
[0, 1]). A synthesizer that memorizes puts its rows
closer to the fit rows than unseen real rows are. Figures, each finite on data with duplicate
rows (where many real holdout rows equal a fit row and their median DCR is 0):

- exact-copy share: the share of sampled synthetic rows equal to a fit row on every feature
  (counted before such rows are dropped), beside the share of real holdout rows that equal a
  fit row (what duplicates in the data give unseen real rows anyway);
- DCR ratio (gated by `synthetic.privacy.min_dcr_ratio`): median DCR of synthetic rows over the
  median DCR of real holdout rows (never fit on) of the same class mix, each median floored at
  `DCR_FLOOR`: distances under a thousandth of the columns' ranges count as equal. When the
  holdout's median is 0 (duplicates), the ratio is the synthetic median over the floor, not
  1e10; when both medians are under the floor, it is 1 (as close as unseen real rows);
- closer-than-holdout share: the chance that a synthetic row is closer to the fit rows than a
  real holdout row is (ties count half): 0.5 for rows as private as unseen real data, 1 for
  copies; bounded, so it never explodes;
- sdmetrics' DCROverfittingProtection and DCRBaselineProtection (against random rows, which
  never duplicate the fit rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlinfra_assets.synthetic.columns import TABLE
from mlinfra_assets.synthetic.data import LABEL

DCR_FLOOR = 1e-3  # DCRs under this (a thousandth of the columns' ranges) count as equal


@dataclass(frozen=True)
class PrivacyResult:
    exact_matches: int  # candidate rows still equal to a real row (copies are dropped: 0)
    exact_copy_share: float  # sampled synthetic rows equal to a fit row, before dropping
    holdout_copy_share: float  # real holdout rows equal to a fit row (the data's own duplicates)
    synthetic_dcr: float  # median
    holdout_dcr: float  # median
    dcr_ratio: float  # medians floored at DCR_FLOOR
    closer_share: float  # P(synthetic DCR < holdout DCR), ties half
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
            "Exact Matches": self.exact_matches, "Exact Copy Share": self.exact_copy_share,
            "Holdout Copy Share": self.holdout_copy_share, "DCR Synthetic Median": self.synthetic_dcr,
            "DCR Holdout Median": self.holdout_dcr, "DCR Ratio": self.dcr_ratio,
            "DCR Closer Than Holdout Share": self.closer_share,
            "DCR Overfitting Protection": self.overfitting_protection,
            "Closer To Training Share": self.closer_to_training,
            "DCR Baseline Protection": self.baseline_protection,
        }
        return pd.DataFrame(
            [{"metric": "privacy", "property": k, "column_name": None, "score": float(v)} for k, v in figures.items()]
        )


def dcr_ratio(synthetic_median: float, holdout_median: float, floor: float = DCR_FLOOR) -> float:
    """Median DCR of synthetic rows over real holdout rows', each floored at `floor` (finite).

    Examples
    --------
    >>> dcr_ratio(0.05, 0.1)
    0.5
    >>> dcr_ratio(0.05, 0.0)  # the holdout duplicates fit rows: the floor, not a division by 0
    50.0
    >>> dcr_ratio(0.0, 0.0)
    1.0
    """
    return max(synthetic_median, floor) / max(holdout_median, floor)


def closer_share(synthetic: np.ndarray, holdout: np.ndarray) -> float:
    """P(a synthetic DCR < a holdout DCR) over every pair, ties counted half (in [0, 1]).

    Examples
    --------
    >>> closer_share(np.array([0.0, 0.0]), np.array([0.0, 0.0]))  # all duplicates: a tie
    0.5
    >>> closer_share(np.array([0.2]), np.array([0.0, 0.1, 0.3]))
    0.3333333333333333
    """
    ordered = np.sort(np.asarray(holdout, dtype=float))
    values = np.asarray(synthetic, dtype=float)
    below = np.searchsorted(ordered, values, side="left")  # holdout DCRs < the synthetic one
    not_above = np.searchsorted(ordered, values, side="right")
    farther = len(ordered) - not_above  # holdout DCRs > the synthetic one: it is closer
    ties = not_above - below
    return float(np.mean((farther + 0.5 * ties) / len(ordered)))


def copy_share(rows: pd.DataFrame, fit_rows: pd.DataFrame, columns: list[str]) -> float:
    """Share of `rows` equal to some fit row on every one of `columns` (NULL equals NULL)."""
    if rows.empty:
        return float("nan")
    keys = fit_rows[columns].drop_duplicates()
    hits = rows[columns].merge(keys, on=columns, how="left", indicator=True)["_merge"] == "both"
    return float(hits.mean())


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
    exact_matches: int, rows: int, exact_copy_share: float, features: list[str], seed: int = 0,
) -> PrivacyResult:
    """Compare synthetic rows and real holdout rows by their distance to the fit rows.

    Parameters
    ----------
    synthetic, fit_rows, holdout
        Frames with the features and `_label` (class names); fit_rows are the synthesizer's
        training rows, holdout real rows it never saw.
    metadata
        The synthesizer's SDV metadata (which columns are numerical or categorical).
    exact_matches
        Synthetic rows equal to a real row on every feature (counted in the warehouse).
    rows
        Rows compared per side (`synthetic.privacy.rows`).
    exact_copy_share
        Sampled synthetic rows equal to a fit row, before they were dropped.
    features
        The spec's features: what "equal to a fit row" compares.

    Raises
    ------
    ValueError
        When the holdout or the fit rows hold no row of a class the synthetic rows have.
    """
    from mlinfra_assets.synthetic import dcr

    columns = list(metadata.tables[TABLE].columns)
    md = metadata.to_dict()["tables"][TABLE]
    mix = synthetic[LABEL].value_counts()
    for name, frame in (("real holdout", holdout), ("fit", fit_rows)):
        missing = sorted(set(mix.index) - set(frame[LABEL]))
        if missing:
            raise ValueError(
                f"privacy needs {name} rows of every sampled class: none of class {', '.join(map(repr, missing))} "
                "(raise training.holdout_percent, or label more rows of it)"
            )
    syn = matched(synthetic[columns], mix, rows, seed)
    hold_full = matched(holdout, mix, rows, seed)
    hold = hold_full[columns]
    train = fit_rows.loc[fit_rows[LABEL].isin(mix.index), columns]
    syn_dcr, hold_dcr = dcr.dcr(syn, train, md), dcr.dcr(hold, train, md)
    syn_median, hold_median = float(np.median(syn_dcr)), float(np.median(hold_dcr))
    n = min(len(syn), len(hold), len(train))
    overfit, closer_to_training = dcr.overfitting_protection(
        train, syn, hold, md, n if n < max(len(syn), len(train)) else None, seed, syn_dcr
    )
    baseline = dcr.baseline_protection(train, syn_dcr, len(syn), md, seed)
    return PrivacyResult(
        exact_matches=exact_matches,
        exact_copy_share=float(exact_copy_share),
        holdout_copy_share=copy_share(hold_full, fit_rows, features),
        synthetic_dcr=syn_median,
        holdout_dcr=hold_median,
        dcr_ratio=dcr_ratio(syn_median, hold_median),
        closer_share=closer_share(syn_dcr, hold_dcr),
        overfitting_protection=overfit,
        closer_to_training=closer_to_training,
        baseline_protection=baseline,
        rows=len(syn),
    )
