"""The decision rule: a shift of the positive class's logit, folded into the net.

A model trained with class weights on weak labels ranks well but its argmax decision sits in
the wrong place (the class weights and the label model's prior both move it). With weak rows,
the shift makes argmax flag the label model's estimate of the positive share of those rows
(`clip_to_prevalence` with factor 1; a wider factor lets the best F1 on the gold validation
rows choose within the band). Without them, the shift that maximizes F1 on the gold
validation rows (`best_shift`). The gold rows come from the active-learning queue, so their
best F1 is a poor guide for the population: on three demo worlds matching the prevalence
gave a steadier and better holdout F1. Folding the shift into the last layer's bias keeps one
artifact whose argmax is the decision everywhere (scoring, monitoring, the edge variants).

Whatever chose the shift, it is then capped on the rows of the latest scored partitions
(`cap_to_recent`): a retrain after a shift learns from a few hundred uncertain answers and weak
rows of the whole history, and its decision can flag several times the positives the recent
rows hold (on one demo world, 1,263 rows for 383 fraud rows); it flags at most
`prevalence_factor` x the positive share the champion's calibrated probabilities expect there.

Two classes with the positive-class F1 as the metric only (`applies`). With three or more
classes a shift of one class's logit buys its F1 with the others' rows: on wine-like 3-class
data it took macro-F1 from 0.39 (argmax) to 0.30, below the majority class. There the
decision is the plain argmax (the class weights already balance the classes).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def applies(n_classes: int, metric: str) -> bool:
    """Whether the positive-logit shift is tuned: two classes and the positive class's F1."""
    return n_classes == 2 and metric == "f1"


def margins(logits: np.ndarray, positive: int) -> np.ndarray:
    """Positive logit minus the best other logit: argmax is positive where the margin is > 0."""
    others = np.delete(logits, positive, axis=1)
    return logits[:, positive] - others.max(axis=1)


def best_shift(logits: np.ndarray, labels: np.ndarray, positive: int, resamples: int = 0, seed: int = 0) -> float:
    """The shift of the positive logit that maximizes F1 of the positive class on these rows.

    With `resamples` > 0, the median of the best shifts of that many bootstrap resamples of
    the rows: a few hundred gold rows give a noisy F1 curve, and its argmax jumps; the
    bagged boundary is steadier. No positive among the rows: 0 (nothing to tune on).
    """
    truth = labels == positive
    if not truth.any() or len(labels) == 0:
        return 0.0
    m = margins(logits, positive)
    if resamples <= 0:
        return _best_shift(m, truth)
    rng = np.random.default_rng(seed)
    draws = (rng.integers(0, len(m), len(m)) for _ in range(resamples))
    return float(np.median([_best_shift(m[d], truth[d]) for d in draws if truth[d].any()] or [0.0]))


def _best_shift(m: np.ndarray, truth: np.ndarray) -> float:
    """Rows sorted by margin; flagging the top k gives F1 = 2 tp_k / (k + P); the boundary goes
    halfway between the k-th and the (k+1)-th margin of the best k."""
    order = np.argsort(-m, kind="stable")
    tp = np.cumsum(truth[order])
    k = np.arange(1, len(m) + 1)
    f1 = 2 * tp / (k + truth.sum())
    best = int(np.argmax(f1))  # flag rows order[0..best]
    sorted_m = m[order]
    below = sorted_m[best + 1] if best + 1 < len(m) else sorted_m[best] - 1.0
    return float(-(sorted_m[best] + below) / 2)


def fold_shift(model: nn.Module, positive: int, shift: float) -> None:
    """Add `shift` to the positive class's bias of the model's last Linear layer (in place)."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.bias[positive] += shift


def clip_to_prevalence(shift: float, population_margins: np.ndarray, prevalence: float, factor: float = 2.0
                       ) -> float:
    """Bound the shift so that the share of flagged rows of an unlabelled sample of the
    population stays within [prevalence / factor, prevalence * factor].

    The gold rows come from the active-learning queue: they are the uncertain rows, not a
    sample of the population, and the best F1 among them can mean flagging most of them,
    which on the population flags far too many. The label model's estimate of the positive
    share (the weak rows' mean soft target) bounds the decision instead.
    """
    if len(population_margins) == 0 or not 0 < prevalence < 1:
        return shift
    lo = -float(np.quantile(population_margins, 1 - min(prevalence / factor, 1.0)))
    hi = -float(np.quantile(population_margins, 1 - min(prevalence * factor, 1.0)))
    return float(np.clip(shift, lo, hi))


def cap_to_recent(shift: float, recent_margins: np.ndarray, share: float, factor: float) -> float:
    """The shift, lowered where it would flag more than `share * factor` of the recent rows
    (their margins before the shift); unchanged without recent rows or a share in (0, 1)."""
    if len(recent_margins) == 0 or not 0 < share < 1:
        return shift
    most = min(share * factor, 1.0)
    return float(min(shift, -float(np.quantile(recent_margins, 1 - most))))
