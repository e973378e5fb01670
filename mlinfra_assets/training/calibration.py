"""Calibration of a model's class probabilities on gold validation rows.

The model's own probabilities decide (their argmax is the prediction); the calibrated ones
estimate how well it does where no label has arrived yet (`monitoring.estimation`). Three
candidates, chosen by the Brier score (a proper score) out of fold on the gold validation rows,
so that a flexible map does not win by fitting the rows it is judged on:

- `none`: the model's probabilities as they are;
- `temperature`: softmax(log p / T), one T fitted by log loss;
- `isotonic`: a monotone map per class (the positive class for two), renormalized.

Saved as `calibration.json` beside the model (`ScoringModel.save`); `Calibration.apply` needs
numpy only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

FILE = "calibration.json"
METHODS = ("none", "temperature", "isotonic")
FOLDS = 5
MIN_ROWS = 50  # fewer gold validation rows: not calibrated (the choice would be noise)
MIN_PER_CLASS = 5
EPS = 1e-12


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration map and how it was chosen."""

    method: str = "none"
    temperature: float = 1.0
    # isotonic: per class (two classes: the positive only) the map's knots (x ascending, y)
    knots: list[list[list[float]]] = field(default_factory=list)
    positive: int = 1  # the class whose map is fitted when there are two
    brier: dict[str, float] = field(default_factory=dict)  # out-of-fold Brier score per candidate
    rows: int = 0  # gold validation rows it was chosen and fitted on
    reason: str = "not calibrated"

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities [rows, classes] (rows sum to 1) of the model's `probs`."""
        probs = np.asarray(probs, dtype="float64")
        if self.method == "temperature":
            return _softmax(np.log(np.clip(probs, EPS, 1.0)) / self.temperature)
        if self.method == "isotonic":
            if probs.shape[1] == 2:
                pos = np.interp(probs[:, self.positive], *self.knots[0])
                out = np.empty_like(probs)
                out[:, self.positive], out[:, 1 - self.positive] = pos, 1.0 - pos
                return out
            mapped = np.column_stack([np.interp(probs[:, k], *self.knots[k]) for k in range(probs.shape[1])])
            total = mapped.sum(axis=1, keepdims=True)
            # a row every map sends to 0 keeps the model's own probabilities
            return np.where(total > EPS, mapped / np.maximum(total, EPS), probs)
        return probs

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        return cls(**json.loads(text))


def brier(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean over rows of the squared distance between the probabilities and the one-hot label."""
    onehot = np.eye(probs.shape[1])[labels]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fit_temperature(labels: np.ndarray, probs: np.ndarray) -> float:
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(probs, EPS, 1.0))

    def nll(log_t: float) -> float:
        p = _softmax(logp / np.exp(log_t))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], EPS, 1.0))))

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


def _fit_isotonic(labels: np.ndarray, probs: np.ndarray, positive: int) -> list[list[list[float]]]:
    from sklearn.isotonic import IsotonicRegression

    classes = [positive] if probs.shape[1] == 2 else range(probs.shape[1])
    knots = []
    for k in classes:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probs[:, k], labels == k)
        knots.append([iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()])
    return knots


def _fit(method: str, labels: np.ndarray, probs: np.ndarray, positive: int) -> Calibration:
    if method == "temperature":
        return Calibration("temperature", temperature=_fit_temperature(labels, probs), positive=positive)
    if method == "isotonic":
        return Calibration("isotonic", knots=_fit_isotonic(labels, probs, positive), positive=positive)
    return Calibration("none", positive=positive)


def fit(labels: np.ndarray, probs: np.ndarray, positive: int = 1, seed: int = 0) -> Calibration:
    """The candidate with the lowest out-of-fold Brier score on these gold rows (`none` on a tie),
    refitted on all of them; `none` with the reason when there are too few rows to choose."""
    labels, probs = np.asarray(labels, dtype="int64"), np.asarray(probs, dtype="float64")
    counts = np.bincount(labels, minlength=probs.shape[1]) if len(labels) else np.zeros(probs.shape[1])
    if len(labels) < MIN_ROWS or (counts > 0).sum() < 2 or counts[counts > 0].min() < MIN_PER_CLASS:
        return Calibration(positive=positive, rows=len(labels), reason=(
            f"not calibrated: {len(labels)} gold validation rows, class counts {counts.astype(int).tolist()} "
            f"(needs at least {MIN_ROWS} rows and {MIN_PER_CLASS} of each of two classes)"))
    fold = np.random.default_rng(seed).permutation(len(labels)) % FOLDS
    scores = {}
    for method in METHODS:
        out = np.empty_like(probs)
        for f in range(FOLDS):
            held = fold == f
            out[held] = _fit(method, labels[~held], probs[~held], positive).apply(probs[held])
        scores[method] = brier(labels, out)
    best = min(METHODS, key=lambda m: (round(scores[m], 12), METHODS.index(m)))
    chosen = _fit(best, labels, probs, positive)
    return Calibration(
        chosen.method, chosen.temperature, chosen.knots, positive,
        {m: round(s, 6) for m, s in scores.items()}, len(labels),
        f"{best}: lowest out-of-fold Brier score ({scores[best]:.4f}; none {scores['none']:.4f}) "
        f"on {len(labels)} gold validation rows",
    )
