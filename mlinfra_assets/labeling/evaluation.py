"""Label model vs majority vote vs each single LF on the rows with gold, and the choice
between the first two.

Counted by (vote pattern, gold label) in SQL, so it scales with the matrix: every figure is
over the voted rows that have gold (the rows weak labels exist for; on the others every
method abstains), scored with the spec's training metric (`training.metrics.metric_score`).
Majority vote is scored exactly as `label_model.majority_fit` writes it (a tie goes to the
tied class with the highest prior); a single LF's abstain (-1) is a wrong answer, so
abstaining never helps.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.labeling.label_model import LABEL_MODEL, MAJORITY, MATRIX, Fit, quoted
from mlinfra_assets.labeling.queries import load_sql


def gold_patterns(con: duckdb.DuckDBPyConnection, names: list[str], gold_sql: str, table: str = MATRIX) -> pd.DataFrame:
    """(vote pattern, gold label) with its row count `n`, over the matrix rows that have gold."""
    return con.execute(load_sql("gold_patterns", columns=quoted(names), table=table, gold=gold_sql)).df()


def score(pred: np.ndarray, gold: np.ndarray, weight: np.ndarray, metric: str, n_classes: int,
          positive: int) -> dict[str, float]:
    """Coverage, accuracy and the spec's `metric` of predictions on weighted (pattern) rows."""
    from mlinfra_assets.training.metrics import metric_score

    counts = np.asarray(weight, dtype=np.int64)
    y, p = np.repeat(gold.astype(np.int16), counts), np.repeat(pred.astype(np.int16), counts)
    return {
        "coverage": float(np.average(pred != -1, weights=weight)),
        "accuracy": float(np.average(pred == gold, weights=weight)),
        metric: metric_score(metric, y, p, n_classes, positive),
    }


def compare_methods(gold: pd.DataFrame, fits: dict[str, Fit], names: list[str], metric: str,
                    n_classes: int, positive: int) -> pd.DataFrame:
    """One row per method (each of `fits`, e.g. `label_model` and `majority_vote`, then
    `lf:<name>`): `method, rows, coverage, accuracy, <metric>`.

    Raises
    ------
    ValueError
        When no voted matrix row has a gold label.
    """
    gold = gold[(gold[names].to_numpy() != -1).any(axis=1)].reset_index(drop=True)
    if gold.empty:
        raise ValueError("no voted row of the label matrix has a gold label: nothing to evaluate against")
    L = gold[names].to_numpy(dtype=np.int64)
    y, w = gold["gold"].to_numpy(dtype=np.int64), gold["n"].to_numpy(dtype=float)
    predictions = {}
    for method, fit in fits.items():
        joined = gold[names].merge(fit.patterns[[*names, "label"]], on=names, how="left")
        predictions[method] = joined["label"].fillna(-1).to_numpy(dtype=np.int64)
    predictions |= {f"lf:{n}": L[:, j] for j, n in enumerate(names)}
    rows = [{"method": m, "rows": int(w.sum())} | score(p, y, w, metric, n_classes, positive)
            for m, p in predictions.items()]
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame, metric: str) -> tuple[str, str]:
    """The method that writes the weak labels, and why: majority vote when it scores
    strictly higher than the label model on `metric`, else the label model (also on a tie,
    or when the metric is undefined on these rows)."""
    by = table.set_index("method")[metric]
    lm, mv = float(by[LABEL_MODEL]), float(by[MAJORITY])
    rows = int(table["rows"].iloc[0])
    if np.isnan(lm) or np.isnan(mv):
        return LABEL_MODEL, (f"{metric} is undefined on the {rows} voted gold rows (label model {lm}, majority "
                             f"vote {mv}): Snorkel's LabelModel is used by default")
    if mv > lm:
        return MAJORITY, (f"majority vote scores {metric} {mv:.4f} vs the label model's {lm:.4f} on {rows} voted "
                          "gold rows: the LFs' estimated accuracies mislead the label model, so majority vote "
                          "writes the weak labels")
    return LABEL_MODEL, (f"the label model scores {metric} {lm:.4f} vs majority vote's {mv:.4f} on {rows} voted "
                         "gold rows" + (" (a tie keeps the label model)" if lm == mv else ""))
