"""The training loop: noise-aware soft-target loss, class balancing, early stopping.

Dagster-free. Input is the training set as a DataFrame (features, `prob_<class>` soft
targets, `label`, `weight`, `source`); output is a `ScoringModel` and its learning curve.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training.metrics import f1_positive
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
    patience: int = 2
    balance_power: float = 0.5  # 1.0 = full inverse-frequency class weights, 0.0 = none
    min_gold_validation: int = 200
    min_gold_positives: int = 20
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
    seconds: float


@dataclass
class TrainResult:
    model: ScoringModel
    history: list[EpochStats]
    best_epoch: int  # 0 when no epoch ran
    best_val_f1: float
    validation: str  # which rows validated
    class_weights: list[float]
    train_rows: int
    val_rows: int
    seconds: float
    samples_per_s: float
    val_labels: np.ndarray = field(repr=False)
    val_probs: np.ndarray = field(repr=False)


def validation_mask(df: pd.DataFrame, cfg: TrainConfig) -> tuple[np.ndarray, str]:
    """Validation rows: a seeded half of the gold rows when there are enough gold rows and
    positives (the other half still trains), else a seeded 10% of the whole training set."""
    rng = np.random.default_rng(cfg.seed)
    draw = rng.random(len(df))
    gold = (df["source"] == "gold").to_numpy()
    half = gold & (draw < 0.5)
    positives = int(np.sum(half & (df["label"].to_numpy() == cfg.positive_index)))
    if half.sum() >= cfg.min_gold_validation and positives >= cfg.min_gold_positives:
        return half, f"half of the gold rows ({int(half.sum())})"
    return draw < 0.1, f"seeded 10% of the training set ({int(np.sum(draw < 0.1))})"


def class_weights(targets: np.ndarray, weights: np.ndarray, power: float) -> np.ndarray:
    """Inverse-frequency class weights from the weighted soft label distribution, ** power."""
    mass = (targets * weights[:, None]).sum(axis=0)
    if np.any(mass <= 0):
        empty = [int(i) for i in np.flatnonzero(mass <= 0)]
        raise ValueError(f"the training set has no weight on class index {empty}: add rows of it")
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


def _evaluate(model: TabularMLP, num: torch.Tensor, cat: torch.Tensor, t: torch.Tensor,
              w: torch.Tensor, cw: torch.Tensor, positive: int) -> tuple[float, float, np.ndarray]:
    model.eval()
    with torch.no_grad():
        logits = model(num, cat)
        loss, norm = soft_cross_entropy(logits, t, w, cw)
        probs = torch.softmax(logits, dim=1).numpy()
    labels = t.argmax(dim=1).numpy()
    f1 = f1_positive(labels, probs.argmax(1), positive)
    # no positive in the validation rows nor predicted: F1 is undefined; rank such epochs by loss
    return float(loss / norm.clamp_min(1e-12)), 0.0 if np.isnan(f1) else f1, probs


def train(df: pd.DataFrame, spec: DatasetSpec, cfg: TrainConfig, log=print) -> TrainResult:  # noqa: ANN001
    """Fit a `TabularMLP` on the training set; keep the epoch with the best validation F1.

    Parameters
    ----------
    df : the training set (features, `prob_<class>`, `label`, `weight`, `source`).
    spec : the dataset spec (feature lists, classes).
    cfg : the training knobs; `cfg.epochs = 0` returns the untrained network.
    log : called with one line per epoch.
    """
    if df.empty:
        raise ValueError("the training set is empty: materialize training/training_set first")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(df, spec, cfg, log)
    finally:
        torch.set_num_threads(threads)


def _train(df: pd.DataFrame, spec: DatasetSpec, cfg: TrainConfig, log) -> TrainResult:  # noqa: ANN001
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    start = time.perf_counter()
    val_mask, val_kind = validation_mask(df, cfg)
    pre = Preprocessor.fit(df.loc[~val_mask], spec.numeric, spec.categorical)
    num, cat = pre.encode(df)
    targets = df[spec.prob_columns].to_numpy(dtype="float32")
    targets = targets / targets.sum(axis=1, keepdims=True).clip(min=1e-12)
    weights = df["weight"].to_numpy(dtype="float32")
    cw = torch.from_numpy(class_weights(targets[~val_mask], weights[~val_mask], cfg.balance_power))
    tr = [torch.from_numpy(np.ascontiguousarray(a[~val_mask])) for a in (num, cat, targets, weights)]
    va = [torch.from_numpy(np.ascontiguousarray(a[val_mask])) for a in (num, cat, targets, weights)]
    model = TabularMLP(pre, spec.n_classes, cfg.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(tr[0])
    history: list[EpochStats] = []
    best_state, best_key, best_epoch = copy.deepcopy(model.state_dict()), (-1.0, 0.0), 0
    train_seconds = 0.0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total, total_norm = 0.0, 0.0
        for idx in torch.randperm(n, generator=gen).split(cfg.batch_size):
            loss, norm = soft_cross_entropy(model(tr[0][idx], tr[1][idx]), tr[2][idx], tr[3][idx], cw)
            opt.zero_grad()
            (loss / norm.clamp_min(1e-12)).backward()
            opt.step()
            total, total_norm = total + loss.item(), total_norm + norm.item()
        train_seconds += time.perf_counter() - t0
        val_loss, val_f1, _ = _evaluate(model, *va, cw, cfg.positive_index)
        history.append(EpochStats(epoch, total / max(total_norm, 1e-12), val_loss, val_f1,
                                  time.perf_counter() - t0))
        log(f"epoch {epoch}: train loss {history[-1].train_loss:.4f}, val loss {val_loss:.4f}, val F1 {val_f1:.4f}")
        if (val_f1, -val_loss) > best_key:
            best_state, best_key, best_epoch = copy.deepcopy(model.state_dict()), (val_f1, -val_loss), epoch
        elif epoch - best_epoch >= cfg.patience:
            log(f"early stop: no better validation F1 for {cfg.patience} epochs (best epoch {best_epoch})")
            break
    model.load_state_dict(best_state)
    _, best_f1, val_probs = _evaluate(model, *va, cw, cfg.positive_index)
    seconds = time.perf_counter() - start
    return TrainResult(
        model=ScoringModel(model, pre, list(spec.classes)), history=history, best_epoch=best_epoch,
        best_val_f1=best_f1, validation=val_kind, class_weights=cw.tolist(), train_rows=n,
        val_rows=int(val_mask.sum()), seconds=seconds,
        samples_per_s=n * len(history) / train_seconds if train_seconds else 0.0,
        val_labels=va[2].argmax(dim=1).numpy(), val_probs=val_probs,
    )
