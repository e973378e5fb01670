"""LF diagnostics with Snorkel's LFAnalysis: polarity, coverage, overlaps, conflicts, accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd

SUMMARY_COLUMNS = ["lf", "polarity", "coverage", "overlaps", "conflicts", "correct", "incorrect", "emp_acc"]


def lf_summary(
    matrix: pd.DataFrame, lfs: list, classes: list[str], gold: pd.DataFrame | None
) -> pd.DataFrame:
    """Snorkel's `LFAnalysis.lf_summary` in the `labeling.lf_summary` contract.

    Parameters
    ----------
    matrix
        `row_id` and one vote column per LF.
    lfs
        The LabelingFunction objects, in column order.
    classes
        The spec's classes: polarity is written as class names.
    gold
        `row_id, label` of rows with a known label, or None. Coverage, overlaps and
        conflicts are over all rows; `correct`, `incorrect`, `emp_acc` over the gold rows
        only (NULL where there is no gold, never 0).

    Returns
    -------
    pandas.DataFrame
        One row per LF with the columns of `SUMMARY_COLUMNS`.
    """
    from snorkel.labeling import LFAnalysis

    names = [lf.name for lf in lfs]
    L = matrix[names].to_numpy(dtype=np.int64)
    summary = LFAnalysis(L, lfs).lf_summary()
    out = pd.DataFrame(
        {
            "lf": names,
            "polarity": [",".join(classes[k] for k in pol) for pol in summary["Polarity"]],
            "coverage": summary["Coverage"].to_numpy(dtype=float),
            "overlaps": summary["Overlaps"].to_numpy(dtype=float),
            "conflicts": summary["Conflicts"].to_numpy(dtype=float),
            "correct": pd.array([None] * len(names), dtype="Int64"),
            "incorrect": pd.array([None] * len(names), dtype="Int64"),
            "emp_acc": pd.array([None] * len(names), dtype="Float64"),
        }
    )
    if gold is not None and len(gold):
        out.update(empirical_accuracy(matrix, lfs, gold))
    return out[SUMMARY_COLUMNS]


def empirical_accuracy(matrix: pd.DataFrame, lfs: list, gold: pd.DataFrame) -> pd.DataFrame:
    """Correct, incorrect and accuracy of each LF on the rows with a gold label.

    An LF that never votes on a gold row gets NULLs (no evidence), not zeros.
    """
    from snorkel.labeling import LFAnalysis

    names = [lf.name for lf in lfs]
    joined = matrix.merge(gold[["row_id", "label"]], on="row_id")
    empty = pd.DataFrame(
        {
            "correct": pd.array([None] * len(names), dtype="Int64"),
            "incorrect": pd.array([None] * len(names), dtype="Int64"),
            "emp_acc": pd.array([None] * len(names), dtype="Float64"),
        }
    )
    if joined.empty:
        return empty
    L = joined[names].to_numpy(dtype=np.int64)
    s = LFAnalysis(L, lfs).lf_summary(Y=joined["label"].to_numpy(dtype=np.int64))
    voted = (L != -1).sum(axis=0) > 0
    out = empty.copy()
    out.loc[voted, "correct"] = s["Correct"].to_numpy()[voted]
    out.loc[voted, "incorrect"] = s["Incorrect"].to_numpy()[voted]
    out.loc[voted, "emp_acc"] = s["Emp. Acc."].to_numpy(dtype=float)[voted]
    return out
