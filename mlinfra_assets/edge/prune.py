"""Magnitude pruning of the Linear weights with a short fine-tune on the training set.

`torch.nn.utils.prune.global_unstructured` zeroes the smallest |w| across all Linear
weights together (layers keep what matters most to the whole network); the pruning masks
stay attached during the fine-tune, so pruned weights stay zero, and are then baked in
with `prune.remove`. The loss is the trainer's noise-aware soft cross-entropy.

The trained model's decision rule was tuned on gold (a shift folded into the positive
logit's bias, `training.decision`; two classes only); the fine-tune's class weights move it
again. So after the fine-tune the positive logit is shifted back until the pruned model
flags the same share of the fine-tune rows as the original did (training rows only: no
holdout involved). With three or more classes no class's logit is shifted.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils import prune

from mlinfra_assets.training.batches import WEIGHT
from mlinfra_assets.training.model import Preprocessor
from mlinfra_assets.training.trainer import class_weights, mixed_batch, soft_cross_entropy


@dataclass
class FinetuneSet:
    """Encoded training rows: numerics, codes, soft targets (rows sum to 1) and row weights."""

    numeric: np.ndarray
    categorical: np.ndarray
    targets: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_frame(cls, df: pd.DataFrame, pre: Preprocessor, target_columns: list[str],
                   weight_column: str = WEIGHT) -> FinetuneSet:
        """From `training.training_set` rows: features, the soft targets `target_columns`
        (`batches.target_columns(spec)`: `_prob_<class>`) and `weight_column` (`_weight`)."""
        missing = [c for c in [*target_columns, weight_column] if c not in df.columns]
        if missing:
            raise ValueError(f"fine-tune rows lack columns {missing}: pass rows of training.training_set")
        num, cat = pre.encode(df)
        targets = df[target_columns].to_numpy(dtype="float32")
        targets = targets / targets.sum(axis=1, keepdims=True).clip(min=1e-12)
        return cls(num, cat, targets, df[weight_column].to_numpy(dtype="float32"))

    def __len__(self) -> int:
        return len(self.targets)


def linear_sparsity(model: nn.Module) -> float:
    """Share of exactly-zero weights over the linear layers of `model` (nn.Linear, int8 ones included)."""
    weights = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            weights.append(m.weight.detach())
        elif isinstance(getattr(m, "weight_int8", None), torch.Tensor):  # kernels.Int8Linear
            weights.append(m.weight_int8)
        elif hasattr(m, "_packed_params") and callable(getattr(m, "weight", None)):  # dynamic int8 Linear
            weights.append(m.weight().int_repr())
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / total) if total else 0.0


def prune_and_finetune(
    model: nn.Module,
    amount: float,
    data: FinetuneSet,
    epochs: int = 2,
    learning_rate: float = 1e-3,
    batch_size: int = 1024,
    seed: int = 7,
    positive: int | None = None,
    mixup: float = 0.0,
) -> nn.Module:
    """A copy of `model` with `amount` of its Linear weights zeroed (global L1), then fine-tuned.

    Parameters
    ----------
    model : nn.Module
        The trained network (left untouched).
    amount : float
        Share of Linear weights to zero, in (0, 1).
    data : FinetuneSet
        Training rows; `epochs` passes over them in shuffled mini-batches.
    epochs, learning_rate, batch_size, seed : the fine-tune's knobs (Adam).
    positive : int, optional
        Index of the positive class: realign its decision to the original model's flag rate.
    mixup : float
        Beta alpha of mixup during the fine-tune, as in training (`trainer.mixed_batch`; a
        TabularMLP only); 0: plain batches.

    Returns
    -------
    nn.Module
        The pruned network in eval mode, zeros baked into plain `weight` tensors.
    """
    if not 0.0 < amount < 1.0:
        raise ValueError(f"pruning amount {amount} must be in (0, 1)")
    pruned = copy.deepcopy(model).cpu()
    params = [(m, "weight") for m in pruned.modules() if isinstance(m, nn.Linear)]
    if not params:
        raise ValueError("the model has no nn.Linear layer to prune")
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    if epochs > 0 and len(data):
        _finetune(pruned, data, epochs, learning_rate, batch_size, seed, mixup)
    for module, name in params:
        prune.remove(module, name)
    if positive is not None and epochs > 0 and len(data):
        realign_decision(pruned, model, data, positive)
    return pruned.eval()


def _margin(model: nn.Module, data: FinetuneSet, positive: int) -> np.ndarray:
    """Positive logit minus the best other logit, per fine-tune row."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(data.numeric), torch.from_numpy(data.categorical)).numpy()
    others = np.delete(logits, positive, axis=1)
    return logits[:, positive] - others.max(axis=1)


def realign_decision(pruned: nn.Module, original: nn.Module, data: FinetuneSet, positive: int) -> float:
    """Shift the pruned model's positive logit (last Linear bias) so that it flags the same share
    of `data` as `original`; returns the shift."""
    share = float((_margin(original, data, positive) > 0).mean())
    margin = np.sort(_margin(pruned, data, positive))
    flagged = int(round(share * len(margin)))
    if flagged == 0:
        shift = -float(margin[-1]) - 1e-4
    else:  # midway between the last unflagged and the first flagged margin
        cut = margin[len(margin) - flagged]
        below = margin[len(margin) - flagged - 1] if flagged < len(margin) else cut - 2e-4
        shift = -float((cut + below) / 2)
    last = [m for m in pruned.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.bias[positive] += shift
    return shift


def _finetune(model: nn.Module, data: FinetuneSet, epochs: int, lr: float, batch_size: int, seed: int,
              mixup: float) -> None:
    torch.manual_seed(seed)
    rows = [torch.from_numpy(a) for a in (data.numeric, data.categorical, data.targets, data.weights)]
    cw = torch.from_numpy(class_weights(data.targets, data.weights, power=0.5))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    mixup = mixup if hasattr(model, "features") else 0.0
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(data))
        for i in range(0, len(order), batch_size):
            batch = [r[order[i : i + batch_size]] for r in rows]
            logits, targets, weights = mixed_batch(model, batch, mixup, rng, gen)
            loss, norm = soft_cross_entropy(logits, targets, weights, cw)
            opt.zero_grad()
            (loss / norm.clamp_min(1e-12)).backward()
            opt.step()
    model.eval()
