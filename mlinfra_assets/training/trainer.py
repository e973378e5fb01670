"""The training loop: noise-aware soft-target loss, class balancing, early stopping on gold.

Dagster-free. Input is the training set as `TrainingArrays` (streamed from DuckDB) or a
DataFrame (features, `prob_<class>` soft targets, `label`, `weight`, `source`); output is a
`ScoringModel` whose decision rule was tuned on the gold validation rows, and its curves.

The loss is the soft-target cross-entropy (the label model's probabilities for weak rows),
times the source weight, times an inverse-frequency class weight. Synthetic rows take the mean
soft target of the real rows of their class and at most a capped share of its mass. The gold
rows are cross-fitted: every one of them is scored by a network that did not train on it, in
lockstep with the kept network that trains on every row; the epoch (from `min_epochs`, with
patience) and the decision rule are chosen on those out-of-fold scores. Every network is
validated and kept as an exponential moving average of its weights.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training import decision
from mlinfra_assets.training.batches import SOURCES, TrainingArrays, from_frame
from mlinfra_assets.training.metrics import f1_positive, pr_auc
from mlinfra_assets.training.model import Preprocessor, ScoringModel, TabularMLP


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of one training (spec.training plus the loop's own defaults)."""

    hidden: list[int]
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    positive_index: int
    patience: int = 3
    balance_power: float = 0.5  # 1.0 = full inverse-frequency class weights, 0.0 = none
    min_steps: int = 100  # optimizer steps per epoch at least: a small set is passed several times
    # Gold cross-fitting: the gold rows (at most max_validation) are cut into `folds` stratified
    # folds; a network per fold trains without it and scores it, so every validating gold row is
    # scored out of fold (the epoch and the decision are chosen on all of them, not on half), and
    # the network that is kept trains on every row, gold included.
    folds: int = 3
    max_validation: int = 5000
    min_gold_validation: int = 100
    min_gold_positives: int = 10
    select_on: str = "pr_auc"  # the validation figure that picks the epoch: "pr_auc" or "loss"
    # The first epoch that may be kept. The figure of a few hundred gold rows moves by a few points
    # from epoch to epoch, and an early lucky epoch would end the training before the network has
    # fit the soft targets (the weight average needs a few epochs as well).
    min_epochs: int = 4
    # The network validated and kept is an exponential moving average of the weights (0: the raw
    # weights): one epoch's last steps move a small-batch network's ranking a lot; the average does not.
    ema_decay: float = 0.995
    # Synthetic rows of a class weigh at most this share of the real (gold + weak) rows' weight of
    # that class: the synthesizer samples the minority class to a row share, and at their source
    # weight those copies would outweigh the real rows of the class they imitate.
    synthetic_cap: float = 0.25
    tune_decision: bool = True  # move the positive class's decision to the best gold-validation F1
    decision_resamples: int = 200  # bootstrap resamples of the validation rows for that decision
    # torch intra-op threads. One is fastest for this small MLP: at batch 1024 a second
    # thread buys nothing, and on a busy 2-core machine OpenMP spinning made it 8x slower.
    threads: int = 1

    @classmethod
    def from_spec(cls, spec: DatasetSpec, **overrides: object) -> TrainConfig:
        t = spec.training
        return cls(
            hidden=list(t.hidden), epochs=t.epochs, batch_size=t.batch_size,
            learning_rate=t.learning_rate, seed=t.seed, positive_index=spec.positive_index,
            **overrides,  # type: ignore[arg-type]
        )


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    val_f1: float
    val_pr_auc: float
    seconds: float


@dataclass
class TrainResult:
    model: ScoringModel
    history: list[EpochStats]
    best_epoch: int  # 0 when no epoch ran
    best_val_f1: float  # F1 of the final decision rule on the validation rows
    validation: str  # which rows validated
    class_weights: list[float]
    train_rows: int
    val_rows: int
    seconds: float
    samples_per_s: float
    decision_shift: float  # added to the positive class's logit (0 when not tuned)
    missing: dict[str, int]  # NaN numerics imputed with the training mean, per column
    val_labels: np.ndarray = field(repr=False)
    val_probs: np.ndarray = field(repr=False)


def validation_folds(data: TrainingArrays, cfg: TrainConfig) -> tuple[np.ndarray, str]:
    """The validation fold of each row (-1: never validates) and a description.

    Enough gold rows and positives: every gold row (a seeded `max_validation` of them at most)
    in one of `cfg.folds` folds, stratified by label; the rows of fold k are scored by a network
    that did not train on them. Otherwise a seeded 10% of the whole training set, one fold.
    """
    draw = np.random.default_rng(cfg.seed).random(len(data))
    gold = data.gold
    chosen = gold & (draw < cfg.max_validation / max(int(gold.sum()), 1))
    positives = int(np.sum(chosen & (data.labels == cfg.positive_index)))
    folds = np.full(len(data), -1, dtype="int64")
    k = max(int(cfg.folds), 2)
    if chosen.sum() >= cfg.min_gold_validation and positives >= cfg.min_gold_positives:
        for label in np.unique(data.labels[chosen]):
            rows = np.flatnonzero(chosen & (data.labels == label))
            folds[rows[np.argsort(draw[rows], kind="stable")]] = np.arange(len(rows)) % k
        return folds, f"gold, {k}-fold cross-fit: {int(chosen.sum())} rows, {positives} positive"
    folds[draw < 0.1] = 0
    return folds, f"seeded 10% of the training set ({int(np.sum(draw < 0.1))}), too few gold rows"


def validation_mask(data: TrainingArrays, cfg: TrainConfig) -> tuple[np.ndarray, str]:
    """The rows that validate (see `validation_folds`) and a description."""
    folds, kind = validation_folds(data, cfg)
    return folds >= 0, kind


def prepare_synthetic(data: TrainingArrays, cap: float) -> TrainingArrays:
    """Soft targets and capped weights for the synthetic rows.

    A synthetic row of class c imitates the real rows labelled c (the synthesizer is fit on the
    gold label, else the label model's argmax), and only a share of those are truly c: it gets
    their mean soft target instead of a one-hot one. Then, per class, the synthetic rows' weights
    are scaled down so that their weighted mass is at most `cap` times the real rows' weighted
    mass of that class: the synthesizer samples the minority class up to a row share, and at
    their source weight the copies would outweigh the real rows they imitate.
    """
    synthetic = data.source == SOURCES.index("synthetic")
    if not synthetic.any():
        return data
    targets, weights = data.targets.copy(), data.weights.copy()
    real = ~synthetic
    for label in np.unique(data.labels[synthetic]):
        rows = synthetic & (data.labels == label)
        like = real & (data.labels == label) & (weights > 0)
        if like.any():
            targets[rows] = np.average(targets[like], axis=0, weights=weights[like])
        own = float(np.dot(targets[rows, label], weights[rows]))
        limit = cap * float(np.dot(targets[real, label], weights[real]))
        if own > limit:
            weights[rows] *= np.float32(limit / own)
    return dataclasses.replace(data, targets=targets, weights=weights)


def class_weights(targets: np.ndarray, weights: np.ndarray, power: float,
                  classes: list[str] | None = None) -> np.ndarray:
    """Inverse-frequency class weights from the weighted soft label distribution, ** power."""
    mass = (targets * weights[:, None]).sum(axis=0)
    if np.any(mass <= 0):
        empty = [int(i) for i in np.flatnonzero(mass <= 0)]
        names = f" ({[classes[i] for i in empty]})" if classes else ""
        raise ValueError(f"the training set has no weight on class index {empty}{names}: a model needs "
                         "rows of every class; add labelled rows of it or raise its source weight")
    share = mass / mass.sum()
    cw = (1.0 / (len(mass) * share)) ** power
    return (cw / np.dot(cw, share)).astype("float32")  # weighted mean 1: loss scale unchanged


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, cw: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over rows of weight * sum_c cw_c * p_c * -log q_c, and the normalizer (its weights)."""
    per_class = -targets * torch.log_softmax(logits, dim=1) * cw
    norm = (weights * (targets * cw).sum(dim=1)).sum()
    return (weights * per_class.sum(dim=1)).sum(), norm


def _logits(model: nn.Module, rows: list[torch.Tensor]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(rows[0], rows[1])


def _validate(logits: torch.Tensor, va: list[torch.Tensor], cw: torch.Tensor, positive: int
              ) -> tuple[float, float, float]:
    """Weighted soft-target loss, F1 (argmax) and PR-AUC of the positive class on validation rows."""
    loss, norm = soft_cross_entropy(logits, va[2], va[3], cw)
    probs = torch.softmax(logits, dim=1).numpy()
    labels = va[4].numpy()
    f1, auc = f1_positive(labels, probs.argmax(1), positive), pr_auc(labels, probs[:, positive], positive)
    # no positive in the validation rows: F1 and PR-AUC are undefined; such epochs rank by loss
    return float(loss / norm.clamp_min(1e-12)), f1, auc


def train(data: TrainingArrays | pd.DataFrame, spec: DatasetSpec, cfg: TrainConfig, log=print) -> TrainResult:  # noqa: ANN001
    """Fit a `TabularMLP`; keep the epoch with the best out-of-fold gold PR-AUC (then loss).

    Parameters
    ----------
    data : the training set (`TrainingArrays`, or a DataFrame of training-set rows).
    spec : the dataset spec (feature lists, classes).
    cfg : the training knobs; `cfg.epochs = 0` returns the untrained network.
    log : called with one line per epoch.
    """
    if isinstance(data, pd.DataFrame):
        data = from_frame(data, spec)
    if len(data) == 0:
        raise ValueError("the training set is empty: materialize training/training_set first")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(data, spec, cfg, log)
    finally:
        torch.set_num_threads(threads)


def _tensors(data: TrainingArrays, pre: Preprocessor) -> list[torch.Tensor]:
    arrays = (pre.fill(data.numeric), data.codes, data.targets, data.weights, data.labels)
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


class _Member:
    """One network in training: its rows, optimizer, shuffling generator and weight average."""

    def __init__(self, rows: TrainingArrays, pre: Preprocessor, spec: DatasetSpec, cfg: TrainConfig, seed: int):
        torch.manual_seed(seed)
        self.rows = _tensors(rows, pre)
        self.model = TabularMLP(pre, spec.n_classes, cfg.hidden)
        self.average = copy.deepcopy(self.model) if cfg.ema_decay > 0 else None
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate)
        self.gen = torch.Generator().manual_seed(seed)
        self.n, self.bs = len(rows), min(cfg.batch_size, len(rows))
        self.steps = max(-(-self.n // self.bs), cfg.min_steps)
        self.decay, self.updates = cfg.ema_decay, 0

    @property
    def net(self) -> TabularMLP:
        """The network that is validated and kept: the weight average (or the raw weights)."""
        return self.average if self.average is not None else self.model

    def epoch(self, cw: torch.Tensor) -> tuple[float, float]:
        """`steps` optimizer steps over reshuffled rows; the summed loss and its normalizer."""
        self.model.train()
        total, total_norm = 0.0, 0.0
        order = torch.cat([torch.randperm(self.n, generator=self.gen) for _ in range(-(-self.steps * self.bs // self.n))])
        x, c, t, w = self.rows[:4]
        for idx in order[: self.steps * self.bs].split(self.bs):
            loss, norm = soft_cross_entropy(self.model(x[idx], c[idx]), t[idx], w[idx], cw)
            self.opt.zero_grad()
            (loss / norm.clamp_min(1e-12)).backward()
            self.opt.step()
            self._average()
            total, total_norm = total + loss.item(), total_norm + norm.item()
        return total, total_norm

    def _average(self) -> None:
        if self.average is None:
            return
        self.updates += 1
        keep = min(self.decay, (1 + self.updates) / (10 + self.updates))  # short warm-up: early steps count
        with torch.no_grad():
            for avg, raw in zip(self.average.parameters(), self.model.parameters(), strict=True):
                avg.lerp_(raw, 1.0 - keep)


def _train(data: TrainingArrays, spec: DatasetSpec, cfg: TrainConfig, log) -> TrainResult:  # noqa: ANN001
    start = time.perf_counter()
    data = prepare_synthetic(data, cfg.synthetic_cap)
    folds, val_kind = validation_folds(data, cfg)
    crossfit = val_kind.startswith("gold")
    n_folds = int(folds.max()) + 1
    # cross-fit: one network per fold (trains without it, scores it) and the kept one on every row;
    # otherwise the one network trains without the validation rows and is kept
    fit = data if crossfit else data.rows(folds < 0)
    if len(fit) == 0:
        raise ValueError("the training set has no row left after the validation split: add rows")
    cw = torch.from_numpy(class_weights(fit.targets, fit.weights, cfg.balance_power, list(spec.classes)))
    pre = Preprocessor.from_arrays(fit.numeric, data.vocab, spec.numeric)
    members = [_Member(data.rows(folds != k), pre, spec, cfg, cfg.seed + 1 + k) for k in range(n_folds)]
    vals = [_tensors(data.rows(folds == k), pre) for k in range(n_folds)]
    va = [torch.cat(parts) for parts in zip(*vals, strict=True)]  # fold order: the pooled out-of-fold rows
    if crossfit:
        members.append(_Member(data, pre, spec, cfg, cfg.seed))
    kept = members[-1]
    history: list[EpochStats] = []
    best_state, best_key, best_epoch = copy.deepcopy(kept.net.state_dict()), (-2.0, -np.inf), 0
    best_logits = torch.cat([_logits(m.net, v) for m, v in zip(members, vals, strict=False)])
    train_seconds, samples = 0.0, 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        losses = [m.epoch(cw) for m in members]
        train_seconds += time.perf_counter() - t0
        samples += sum(m.steps * m.bs for m in members)
        logits = torch.cat([_logits(m.net, v) for m, v in zip(members, vals, strict=False)])
        val_loss, val_f1, val_auc = _validate(logits, va, cw, cfg.positive_index)
        total, norm = losses[-1]
        history.append(EpochStats(epoch, total / max(norm, 1e-12), val_loss, val_f1, val_auc, time.perf_counter() - t0))
        log(f"epoch {epoch}: train loss {history[-1].train_loss:.4f}, val loss {val_loss:.4f}, "
            f"val PR-AUC {val_auc:.4f}, val F1 {val_f1:.4f}")
        auc_key = -1.0 if np.isnan(val_auc) else val_auc
        key = (auc_key, -val_loss) if cfg.select_on == "pr_auc" else (-val_loss, auc_key)
        if epoch < min(cfg.min_epochs, cfg.epochs):
            continue  # not a candidate yet: see TrainConfig.min_epochs
        if key > best_key:
            best_state, best_key, best_epoch, best_logits = copy.deepcopy(kept.net.state_dict()), key, epoch, logits
        elif epoch - best_epoch >= cfg.patience:
            log(f"early stop: no better validation {cfg.select_on} for {cfg.patience} epochs (best epoch {best_epoch})")
            break
    model = kept.net
    model.load_state_dict(best_state)
    val_logits, val_labels = best_logits.numpy().copy(), va[4].numpy()
    shift = 0.0
    if cfg.tune_decision and crossfit and history:
        shift = decision.best_shift(val_logits, val_labels, cfg.positive_index, cfg.decision_resamples, cfg.seed)
        weak = fit.rows(fit.source == SOURCES.index("weak"))
        if len(weak):
            sample = weak.rows(np.random.default_rng(cfg.seed).random(len(weak)) < 50_000 / len(weak))
            prevalence = float(weak.targets[:, cfg.positive_index].mean())
            pop = _logits(model, _tensors(sample, pre)).numpy()
            shift = decision.clip_to_prevalence(shift, decision.margins(pop, cfg.positive_index), prevalence)
        decision.fold_shift(model, cfg.positive_index, shift)
        val_logits[:, cfg.positive_index] += shift
        log(f"decision: positive logit shifted by {shift:+.3f} (best F1 on the out-of-fold gold rows)")
    val_probs = torch.softmax(torch.from_numpy(val_logits), dim=1).numpy()
    return TrainResult(
        model=ScoringModel(model, pre, list(spec.classes)), history=history, best_epoch=best_epoch,
        best_val_f1=f1_positive(val_labels, val_probs.argmax(1), cfg.positive_index), validation=val_kind,
        class_weights=cw.tolist(), train_rows=len(kept.rows[3]), val_rows=len(val_labels),
        seconds=time.perf_counter() - start,
        samples_per_s=samples / train_seconds if train_seconds else 0.0,
        decision_shift=shift, missing=dict(data.missing), val_labels=val_labels, val_probs=val_probs,
    )
