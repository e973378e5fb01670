"""Weak labels from the label matrix: Snorkel's LabelModel, and its evaluation against gold."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

EPOCHS = 500


@dataclass(frozen=True)
class WeakLabels:
    """Probabilistic labels of the rows that got at least one vote."""

    frame: pd.DataFrame  # row_id, prob_<class>..., label, confidence, label_model_version
    version: str
    rows_without_votes: int
    lf_accuracy: dict[str, float]  # the label model's estimate of each LF's accuracy


def fit_weak_labels(
    matrix: pd.DataFrame,
    names: list[str],
    classes: list[str],
    class_balance: list[float] | None,
    seed: int,
) -> WeakLabels:
    """Fit Snorkel's LabelModel on the voted rows and label them.

    Parameters
    ----------
    matrix
        `row_id` and one vote column per labeling function (-1 abstains).
    names
        The labeling-function columns, in order.
    classes
        The spec's classes (the cardinality is their number).
    class_balance
        Prior per class, or None for Snorkel's uniform prior.
    seed
        Seed of the label model's fit.

    Returns
    -------
    WeakLabels
        Rows with no vote are left out (counted in `rows_without_votes`).
    """
    from snorkel.labeling.model import LabelModel

    L = matrix[names].to_numpy(dtype=np.int64)
    voted = (L != -1).any(axis=1)
    if not voted.any():
        raise ValueError(
            f"no row got a vote from any labeling function ({', '.join(names)}): "
            "check the functions against the raw columns"
        )
    model = LabelModel(cardinality=len(classes), verbose=False)
    model.fit(L[voted], class_balance=class_balance, n_epochs=EPOCHS, seed=seed, progress_bar=False)
    probs = model.predict_proba(L[voted])
    accuracy = {n: float(w) for n, w in zip(names, model.get_weights(), strict=True)}
    fingerprint = json.dumps(
        {"lfs": names, "balance": class_balance, "rows": int(voted.sum()), "acc": [round(a, 6) for a in accuracy.values()]}
    )
    version = "lm-" + hashlib.sha1(fingerprint.encode()).hexdigest()[:10]
    frame = pd.DataFrame({"row_id": matrix["row_id"].to_numpy()[voted]})
    for k, cls in enumerate(classes):
        frame[f"prob_{cls}"] = probs[:, k]
    frame["label"] = probs.argmax(axis=1).astype(np.int16)
    frame["confidence"] = probs.max(axis=1)
    frame["label_model_version"] = version
    return WeakLabels(frame, version, int((~voted).sum()), accuracy)


def majority_vote(L: np.ndarray, n_classes: int) -> np.ndarray:
    """Snorkel's MajorityLabelVoter; ties abstain (-1)."""
    from snorkel.labeling.model import MajorityLabelVoter

    return MajorityLabelVoter(cardinality=n_classes).predict(L, tie_break_policy="abstain")


def evaluate(
    predictions: dict[str, np.ndarray], gold: np.ndarray, positive: int
) -> pd.DataFrame:
    """Accuracy and positive-class precision, recall, F1 of each method against gold.

    An abstain (-1) counts as a wrong answer for accuracy and as "not positive" for F1,
    so a method cannot look good by abstaining.
    """
    from sklearn.metrics import f1_score, precision_score, recall_score

    truth = gold == positive
    rows = []
    for method, pred in predictions.items():
        guess = pred == positive
        rows.append(
            {
                "method": method,
                "coverage": float((pred != -1).mean()),
                "accuracy": float((pred == gold).mean()),
                "precision": float(precision_score(truth, guess, zero_division=0)),
                "recall": float(recall_score(truth, guess, zero_division=0)),
                "f1": float(f1_score(truth, guess, zero_division=0)),
            }
        )
    return pd.DataFrame(rows)


def compare_methods(
    matrix: pd.DataFrame, names: list[str], weak: pd.DataFrame, gold: pd.DataFrame, n_classes: int, positive: int
) -> pd.DataFrame:
    """Label model vs majority vote vs each single LF, on the voted rows that have gold.

    `gold` has `row_id, label`; the result has one row per method (`lf:<name>` for LFs).
    """
    joined = matrix.merge(weak[["row_id", "label"]], on="row_id").merge(
        gold.rename(columns={"label": "gold"}), on="row_id"
    )
    if joined.empty:
        raise ValueError("no weakly labeled row has a gold label: nothing to evaluate against")
    L = joined[names].to_numpy(dtype=np.int64)
    predictions = {"label_model": joined["label"].to_numpy(), "majority_vote": majority_vote(L, n_classes)}
    predictions |= {f"lf:{n}": L[:, j] for j, n in enumerate(names)}
    result = evaluate(predictions, joined["gold"].to_numpy(), positive)
    result.insert(1, "rows", len(joined))
    return result
