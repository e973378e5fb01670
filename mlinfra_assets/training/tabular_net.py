"""The tabular network and its preprocessing, in one file that needs only numpy, pandas and torch.

This file travels with every registered model (MLflow `code_paths`): the model's pyfunc
(`pyfunc_model.py`) imports it as a top-level module where the project's package is absent,
so nothing here may import from `mlinfra_assets`.

`Preprocessor` turns raw feature columns into tensors (numeric matrix, categorical codes);
`TabularMLP` standardizes numerics inside the network (buffers), embeds categoricals and
returns class logits. A saved model is a folder: the weights as a state dict (`model.pt`), the
layer sizes (`architecture.json`), the preprocessing (`preprocessor.json`), the class names
(`classes.json`) and the names of the scored columns (`outputs.json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

UNKNOWN = 0  # categorical code of values not seen in training
WEIGHTS = "model.pt"
ARCHITECTURE = "architecture.json"  # a saved model's TabularMLP arguments besides the preprocessing
PREPROCESSOR = "preprocessor.json"
CLASSES = "classes.json"
OUTPUTS = "outputs.json"  # {"probabilities": [column per class], "predicted": column of the class name}


@dataclass
class Preprocessor:
    """Column order, numeric statistics and categorical vocabularies learnt from training rows."""

    numeric: list[str]
    categorical: list[str]
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    vocab: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, df: pd.DataFrame, numeric: list[str], categorical: list[str]) -> Preprocessor:
        nums = df[numeric].astype("float64")
        means = nums.mean().fillna(0.0).tolist()
        stds = nums.std(ddof=0).replace(0, 1.0).fillna(1.0).tolist()
        vocab = {c: sorted(df[c].dropna().astype(str).unique().tolist()) for c in categorical}
        return cls(numeric, categorical, means, stds, vocab)

    @classmethod
    def from_arrays(cls, numeric: np.ndarray, vocab: dict[str, list[str]], names: list[str]) -> Preprocessor:
        """Statistics of raw numeric rows (NaN ignored) and a given vocabulary per categorical."""
        x = numeric.astype("float64")
        seen = np.isfinite(x).sum(axis=0)
        means = np.where(seen > 0, np.nansum(x, axis=0) / np.maximum(seen, 1), 0.0)
        var = np.nansum((x - means) ** 2, axis=0) / np.maximum(seen, 1)
        stds = np.where(var > 0, np.sqrt(var), 1.0)
        return cls(list(names), list(vocab), means.tolist(), stds.tolist(), {c: list(v) for c, v in vocab.items()})

    def fill(self, numeric: np.ndarray) -> np.ndarray:
        """Missing and non-finite numerics replaced by the training mean (the documented fallback)."""
        return np.where(np.isfinite(numeric), numeric, np.asarray(self.means, dtype=numeric.dtype))

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Raw rows -> (numeric float32 [n, n_num], codes int64 [n, n_cat]); a missing or
        infinite numeric scores as the training mean, an unseen category as UNKNOWN."""
        num = df[self.numeric].to_numpy(dtype="float64", na_value=np.nan) if self.numeric else np.zeros((len(df), 0))
        num = self.fill(num).astype("float32")
        codes = np.zeros((len(df), len(self.categorical)), dtype="int64")
        for j, col in enumerate(self.categorical):
            index = {v: i + 1 for i, v in enumerate(self.vocab[col])}
            codes[:, j] = df[col].astype(str).map(index).fillna(UNKNOWN).to_numpy(dtype="int64")
        return num, codes

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Preprocessor:
        return cls(**json.loads(text))


class TabularMLP(nn.Module):
    """Standardize numerics, embed categoricals, then an MLP to class logits."""

    def __init__(self, pre: Preprocessor, n_classes: int, hidden: list[int], dropout: float = 0.1):
        super().__init__()
        self.architecture = {"hidden": [int(h) for h in hidden], "dropout": float(dropout)}
        self.register_buffer("mean", torch.tensor(pre.means, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(pre.stds, dtype=torch.float32))
        self.embeddings = nn.ModuleList(
            nn.Embedding(len(pre.vocab[c]) + 1, min(8, (len(pre.vocab[c]) + 2) // 2 + 1))
            for c in pre.categorical
        )
        width = len(pre.numeric) + sum(e.embedding_dim for e in self.embeddings)
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.mlp = nn.Sequential(*layers)

    def features(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """The first Linear's input: standardized numerics, then each categorical's embedding."""
        parts = [(numeric - self.mean) / self.std]
        parts += [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
        return torch.cat(parts, dim=1)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(numeric, categorical))


def build_net(folder: Path) -> tuple[TabularMLP, Preprocessor, list[str]]:
    """The network a folder's JSON files describe (architecture, preprocessing, classes), with
    untrained weights, and its preprocessing and classes."""
    pre = Preprocessor.from_json((folder / PREPROCESSOR).read_text())
    classes = json.loads((folder / CLASSES).read_text())
    return TabularMLP(pre, len(classes), **json.loads((folder / ARCHITECTURE).read_text())).eval(), pre, classes


def load_net(folder: Path, weights: str = WEIGHTS) -> tuple[TabularMLP, Preprocessor, list[str]]:
    """Rebuild a saved network from its JSON files and read its tensors only (`weights_only`):
    loading a model never runs pickled code."""
    net, pre, classes = build_net(folder)
    net.load_state_dict(torch.load(folder / weights, weights_only=True, map_location="cpu"))
    return net.eval(), pre, classes


@torch.no_grad()
def probabilities(net: nn.Module, pre: Preprocessor, df: pd.DataFrame, n_classes: int,
                  batch_size: int = 65536) -> np.ndarray:
    """Class probabilities [rows, classes] of raw feature rows, scored in batches."""
    net.eval()
    num, cat = pre.encode(df)
    out = []
    for i in range(0, len(df), batch_size):
        logits = net(torch.from_numpy(num[i : i + batch_size]), torch.from_numpy(cat[i : i + batch_size]))
        out.append(torch.softmax(logits, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, n_classes), dtype="float32")
