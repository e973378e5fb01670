"""Weak labels from the label matrix with Snorkel's LabelModel, computed by voting pattern.

A row's probabilities depend only on its votes, and a label matrix of m LFs has few
distinct vote patterns (hundreds, not millions). So the matrix never leaves DuckDB: its
patterns are counted in SQL; the LabelModel is fit on the voted rows rebuilt from those
counts (on `fit_rows` of them, in proportion, when there are more: the model only sees
the votes' co-occurrence statistics, so a proportional sample gives the same fit up to
rounding); it is applied to each pattern once; `weak_labels` is a join in DuckDB.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.labeling.queries import load_sql

EPOCHS = 500
MIN_PRIOR = 1e-3
MATRIX = "labeling.label_matrix"


@dataclass(frozen=True)
class Fit:
    """A fitted label model and its predictions per vote pattern."""

    patterns: pd.DataFrame  # the LF columns, n (rows), prob_<class>..., label, confidence
    version: str
    class_balance: list[float]
    balance_source: str  # spec, lf_module, annotated_gold, majority_vote (estimated)
    fit_rows: int  # rows the model was fit on
    voted_rows: int
    rows_without_votes: int
    lf_accuracy: dict[str, float]  # the label model's estimate of each LF's accuracy


def quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def read_patterns(con: duckdb.DuckDBPyConnection, names: list[str], table: str = MATRIX) -> pd.DataFrame:
    """Each distinct vote pattern of `table` with its row count `n`."""
    return con.execute(load_sql("lf_patterns", columns=quoted(names), table=table)).df()


def proportional_rows(patterns: pd.DataFrame, names: list[str], limit: int) -> np.ndarray:
    """The voted rows as an L matrix, scaled down in proportion to at most `limit` rows.

    Each pattern keeps `n * limit / total` rows, rounded by largest remainder; with
    `total <= limit` this is every voted row (row order does not matter to the fit).
    """
    counts = patterns["n"].to_numpy(dtype=np.int64)
    total = int(counts.sum())
    if total > limit:
        exact = counts * (limit / total)
        keep = np.floor(exact).astype(np.int64)
        short = limit - int(keep.sum())
        keep[np.argsort(-(exact - keep), kind="stable")[:short]] += 1
        counts = keep
    return np.repeat(patterns[names].to_numpy(dtype=np.int64), counts, axis=0)


def fit(
    patterns: pd.DataFrame,
    names: list[str],
    classes: list[str],
    class_balance: list[float] | None,
    balance_source: str,
    fit_rows: int,
    seed: int,
) -> Fit:
    """Fit Snorkel's LabelModel on the voted patterns and predict each pattern.

    Parameters
    ----------
    patterns
        `read_patterns` output: the LF columns and `n`.
    class_balance
        Prior per class; None estimates it (`estimate_balance`).
    fit_rows
        At most this many voted rows are fit on (`proportional_rows`).

    Raises
    ------
    ValueError
        When no row has a vote.
    """
    votes = patterns[names].to_numpy()
    voted = patterns[(votes != -1).any(axis=1)].reset_index(drop=True)
    if voted.empty:
        raise ValueError(
            f"no row got a vote from any labeling function ({', '.join(names)}): check the "
            "functions against the raw columns"
        )
    L = proportional_rows(voted, names, fit_rows)
    P = voted[names].to_numpy(dtype=np.int64)
    if class_balance is None:
        class_balance, balance_source = estimate_balance(P, voted["n"].to_numpy(), len(classes)), "majority_vote"
    model = _label_model(L, len(classes), class_balance, seed)
    probs = model.predict_proba(P)
    out = voted[[*names, "n"]].copy()
    for k, cls in enumerate(classes):
        out[f"prob_{cls}"] = probs[:, k]
    out["label"] = probs.argmax(axis=1).astype(np.int16)
    out["confidence"] = probs.max(axis=1)
    accuracy = {n: float(w) for n, w in zip(names, model.get_weights(), strict=True)}
    fingerprint = json.dumps(
        {"lfs": names, "balance": [round(float(p), 6) for p in class_balance], "rows": len(L),
         "acc": [round(a, 6) for a in accuracy.values()]}
    )
    return Fit(
        patterns=out,
        version="lm-" + hashlib.sha1(fingerprint.encode()).hexdigest()[:10],
        class_balance=[float(p) for p in class_balance],
        balance_source=balance_source,
        fit_rows=len(L),
        voted_rows=int(voted["n"].sum()),
        rows_without_votes=int(patterns["n"].sum() - voted["n"].sum()),
        lf_accuracy=accuracy,
    )


def estimate_balance(P: np.ndarray, weight: np.ndarray, k: int) -> list[float]:
    """The class balance as Snorkel's MajorityLabelVoter sees the voted rows: the mean of
    its per-row class distributions (ties split), each class at least `MIN_PRIOR`.

    A rough prior, but a stable one: fixed-point estimates through the label model itself
    collapse a class whose LFs rarely overlap with the others.
    """
    from snorkel.labeling.model import MajorityLabelVoter

    balance = np.average(MajorityLabelVoter(cardinality=k).predict_proba(P), axis=0, weights=weight)
    balance = np.maximum(balance, MIN_PRIOR)
    return [float(p) for p in balance / balance.sum()]


def _label_model(L: np.ndarray, cardinality: int, class_balance: list[float] | None, seed: int):  # noqa: ANN202
    import torch
    from snorkel.labeling.model import LabelModel

    model = LabelModel(cardinality=cardinality, verbose=False)
    balance = None if class_balance is None else np.asarray(class_balance, dtype=float)
    # its tensors are (m*k)^2: torch's thread pool only adds overhead, up to 40x on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.fit(L, class_balance=balance, n_epochs=EPOCHS, seed=seed, progress_bar=False)
    finally:
        torch.set_num_threads(threads)
    return model


def weak_labels_sql(names: list[str], classes: list[str], patterns_view: str, table: str = MATRIX) -> str:
    """SELECT of `labeling.weak_labels` (version bound as the one `?`): matrix x patterns."""
    probs = ", ".join(f'p."prob_{c}"' for c in classes)
    return load_sql("weak_labels", probs=probs, table=table, patterns=patterns_view, columns=quoted(names))


def gold_balance(counts: pd.Series, n_classes: int) -> list[float] | None:
    """Class balance from annotated gold counts per class (add-one smoothed), or None."""
    if counts.sum() == 0:
        return None
    full = counts.reindex(range(n_classes), fill_value=0).to_numpy(dtype=float)
    return list((full + 1) / (full.sum() + n_classes))
