"""Label model vs Snorkel's MajorityLabelVoter vs each single LF, on the rows with gold.

Counted by (vote pattern, gold label) in SQL, so it scales with the matrix: every metric
is a weighted figure over the voted rows that have gold (the rows weak labels exist for;
on the others every method abstains). An abstain (a majority-vote tie, a single LF's -1)
is a wrong answer for accuracy and "not positive" for F1, so abstaining never helps.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.labeling.label_model import MATRIX, Fit, quoted
from mlinfra_assets.labeling.queries import load_sql

LABEL_MODEL, MAJORITY = "label_model", "majority_vote"


def gold_patterns(con: duckdb.DuckDBPyConnection, names: list[str], gold_sql: str, table: str = MATRIX) -> pd.DataFrame:
    """(vote pattern, gold label) with its row count `n`, over the matrix rows that have gold."""
    return con.execute(load_sql("gold_patterns", columns=quoted(names), table=table, gold=gold_sql)).df()


def majority_vote(L: np.ndarray, n_classes: int) -> np.ndarray:
    """Snorkel's MajorityLabelVoter; ties abstain (-1)."""
    from snorkel.labeling.model import MajorityLabelVoter

    return MajorityLabelVoter(cardinality=n_classes).predict(L, tie_break_policy="abstain")


def score(pred: np.ndarray, gold: np.ndarray, weight: np.ndarray, positive: int) -> dict[str, float]:
    """Weighted coverage, accuracy and positive-class precision, recall, F1."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    truth, guess = gold == positive, pred == positive
    return {
        "coverage": float(np.average(pred != -1, weights=weight)),
        "accuracy": float(np.average(pred == gold, weights=weight)),
        "precision": float(precision_score(truth, guess, sample_weight=weight, zero_division=0)),
        "recall": float(recall_score(truth, guess, sample_weight=weight, zero_division=0)),
        "f1": float(f1_score(truth, guess, sample_weight=weight, zero_division=0)),
    }


def compare_methods(gold: pd.DataFrame, fit: Fit, names: list[str], n_classes: int, positive: int) -> pd.DataFrame:
    """One row per method (`label_model`, `majority_vote`, `lf:<name>`): rows and `score`.

    Raises
    ------
    ValueError
        When no matrix row has a gold label.
    """
    gold = gold[(gold[names].to_numpy() != -1).any(axis=1)]
    if gold.empty:
        raise ValueError("no voted row of the label matrix has a gold label: nothing to evaluate against")
    joined = gold.merge(fit.patterns[[*names, "label"]], on=names, how="left")
    L = joined[names].to_numpy(dtype=np.int64)
    y, w = joined["gold"].to_numpy(dtype=np.int64), joined["n"].to_numpy(dtype=float)
    predictions = {
        LABEL_MODEL: joined["label"].fillna(-1).to_numpy(dtype=np.int64),
        MAJORITY: majority_vote(L, n_classes),
    } | {f"lf:{n}": L[:, j] for j, n in enumerate(names)}
    rows = [{"method": m, "rows": int(w.sum())} | score(p, y, w, positive) for m, p in predictions.items()]
    return pd.DataFrame(rows)


def label_model_vs_majority(table: pd.DataFrame) -> tuple[bool, dict[str, float]]:
    """Whether the label model is at least as good as majority vote (F1, then accuracy).

    Returns the verdict and the figures it is based on.
    """
    by = table.set_index("method")
    lm, mv = by.loc[LABEL_MODEL], by.loc[MAJORITY]
    figures = {f"{k}_{m}": float(by.loc[m, k]) for m in (LABEL_MODEL, MAJORITY) for k in ("f1", "accuracy", "coverage")}
    worse = lm["f1"] < mv["f1"] or (lm["f1"] == mv["f1"] and lm["accuracy"] < mv["accuracy"])
    return not worse, figures
