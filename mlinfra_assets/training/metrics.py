"""Classification metrics (positive-class F1 and PR-AUC, macro-F1, accuracy), the baselines
that ignore the features, calibration, and per-slice and per-class tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("f1", "pr_auc", "macro_f1", "accuracy", "ece", "rows", "positives")


def f1_positive(labels: np.ndarray, pred: np.ndarray, positive: int) -> float:
    """F1 of class `positive` for hard predictions; NaN (undefined) when it is neither true nor
    predicted anywhere in the rows."""
    tp = float(np.sum((pred == positive) & (labels == positive)))
    fp = float(np.sum((pred == positive) & (labels != positive)))
    fn = float(np.sum((pred != positive) & (labels == positive)))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def macro_f1(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes present in the rows (true or predicted); NaN for no rows."""
    scores = [f1_positive(labels, pred, c) for c in range(n_classes)]
    defined = [s for s in scores if not np.isnan(s)]
    return float(np.mean(defined)) if defined else float("nan")


def metric_score(metric: str, labels: np.ndarray, pred: np.ndarray, n_classes: int, positive: int) -> float:
    """The spec's training metric (`spec.metric`) of hard predictions: `f1` (of class
    `positive`), `macro_f1` or `accuracy`. NaN where it is undefined on these rows."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    if metric == "f1":
        return f1_positive(labels, pred, positive)
    if metric == "macro_f1":
        return macro_f1(labels, pred, n_classes)
    if metric == "accuracy":
        return float(np.mean(pred == labels)) if len(labels) else float("nan")
    raise ValueError(f"training.metric {metric!r} is unknown: use f1, macro_f1 or accuracy")


def baselines(metric: str, labels: np.ndarray, n_classes: int, positive: int,
              prior_from: np.ndarray | None = None, seed: int = 0) -> dict[str, float]:
    """The metric of two models that ignore the features, on these rows.

    majority: always the most common class (of `prior_from`, default the rows' own labels);
    prior: a class drawn at random with the class priors (the expected figure, estimated on
    50 seeded draws). A model worth deploying beats both.
    """
    labels = np.asarray(labels)
    ref = labels if prior_from is None else np.asarray(prior_from)
    if len(labels) == 0 or len(ref) == 0:
        return {"majority": float("nan"), "prior": float("nan")}
    counts = np.bincount(ref, minlength=n_classes).astype(float)
    majority = np.full(len(labels), int(np.argmax(counts)))
    rng = np.random.default_rng(seed)
    draws = [metric_score(metric, labels, rng.choice(n_classes, len(labels), p=counts / counts.sum()),
                          n_classes, positive) for _ in range(50)]
    return {
        "majority": metric_score(metric, labels, majority, n_classes, positive),
        "prior": float(np.nanmean(draws)) if not np.all(np.isnan(draws)) else float("nan"),
    }


def per_class(labels: np.ndarray, pred: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support of each class (NaN where undefined)."""
    rows = []
    for c, name in enumerate(classes):
        tp = float(np.sum((pred == c) & (labels == c)))
        flagged, support = float(np.sum(pred == c)), float(np.sum(labels == c))
        rows.append({
            "class": name,
            "precision": tp / flagged if flagged else float("nan"),
            "recall": tp / support if support else float("nan"),
            "f1": f1_positive(labels, pred, c),
            "support": int(support),
        })
    return pd.DataFrame(rows)


def pr_auc(labels: np.ndarray, scores: np.ndarray, positive: int) -> float:
    """Average precision of class `positive`; NaN when the rows hold no positive."""
    from sklearn.metrics import average_precision_score

    truth = labels == positive
    if not truth.any():
        return float("nan")
    return float(average_precision_score(truth, scores))


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE: mean |accuracy - confidence| over equal-width confidence bins, by rows."""
    if len(labels) == 0:
        return float("nan")
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def expected_metric(metric: str, calibrated: np.ndarray, pred: np.ndarray, n_classes: int, positive: int) -> float:
    """The metric the calibrated probabilities expect on rows predicted as `pred` (no label
    needed): each class's expected true positives, false positives and false negatives (CBPE),
    as monitoring/estimation.py computes it in SQL per partition."""
    if not len(pred):
        return float("nan")
    if metric == "accuracy":
        return float(calibrated[np.arange(len(pred)), pred].mean())
    f1 = []
    for k in range(n_classes):
        tp, fp = calibrated[pred == k, k].sum(), (1 - calibrated[pred == k, k]).sum()
        fn = calibrated[pred != k, k].sum()
        f1.append(2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn > 0 else np.nan)
    if metric == "f1":
        return float(f1[positive])
    return float(np.nanmean(f1)) if not np.all(np.isnan(f1)) else float("nan")


def summary(labels: np.ndarray, probs: np.ndarray, positive: int, metric: str = "f1") -> dict[str, float]:
    """The figures of one set of rows: F1 and PR-AUC of the positive class (two classes, or
    `metric` "f1"), macro-F1 (three or more classes, or `metric` "macro_f1"), accuracy, ECE,
    the row count and (with the positive class's figures) the positive count."""
    pred = probs.argmax(axis=1)
    n_classes = probs.shape[1]
    binary = n_classes == 2 or metric == "f1"
    out: dict[str, float] = {}
    if binary:
        out["f1"] = f1_positive(labels, pred, positive)
        out["pr_auc"] = pr_auc(labels, probs[:, positive], positive)
    if n_classes > 2 or metric == "macro_f1":
        out["macro_f1"] = macro_f1(labels, pred, n_classes)
    out["accuracy"] = float(np.mean(pred == labels)) if len(labels) else float("nan")
    out["ece"] = expected_calibration_error(labels, probs)
    out["rows"] = float(len(labels))
    if binary:
        out["positives"] = float(np.sum(labels == positive))
    return out


def slice_table(
    frame: pd.DataFrame, probs: np.ndarray, positive: int, slices: list[str], metric: str = "f1",
    label_column: str = "_label",
) -> pd.DataFrame:
    """Long table `slice, slice_value, metric, value`: overall, then each value of each slice column.

    Parameters
    ----------
    frame : rows with a `label_column` (class index) and the slice columns.
    probs : class probabilities of the same rows, shape [n, n_classes].
    positive : index of the class F1 and PR-AUC are computed for.
    slices : categorical columns to break the metrics down by.
    metric : the spec's training metric (`summary` says which figures it adds).
    """
    labels = frame[label_column].to_numpy()
    parts = [("overall", "all", np.ones(len(frame), dtype=bool))]
    for col in slices:
        values = frame[col].astype(str).to_numpy()
        parts += [(col, v, values == v) for v in sorted(set(values))]
    rows = []
    for name, value, mask in parts:
        for m, figure in summary(labels[mask], probs[mask], positive, metric).items():
            rows.append((name, value, m, None if np.isnan(figure) else figure))
    return pd.DataFrame(rows, columns=["slice", "slice_value", "metric", "value"])


def calibration_curve(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Mean confidence and accuracy per non-empty confidence bin (top label)."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.clip(np.digitize(conf, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    kept = [b for b in range(bins) if (which == b).any()]
    return (
        np.array([conf[which == b].mean() for b in kept]),
        np.array([correct[which == b].mean() for b in kept]),
    )
