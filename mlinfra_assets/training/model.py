"""A trained model with its preprocessing (`ScoringModel`): scores raw rows, saves and loads
the folder that the registry keeps. The network and the preprocessing themselves live in
`tabular_net.py`, which travels with the registered model."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from mlinfra_assets.spec import class_column
from mlinfra_assets.training.calibration import FILE as CALIBRATION
from mlinfra_assets.training.calibration import Calibration
from mlinfra_assets.training.tabular_net import (
    ARCHITECTURE,
    CLASSES,
    OUTPUTS,
    PREPROCESSOR,
    UNKNOWN,
    WEIGHTS,
    Preprocessor,
    TabularMLP,
    load_net,
    probabilities,
)

__all__ = ["ARCHITECTURE", "PREDICTED", "TRUST_PICKLES", "UNKNOWN", "Preprocessor", "ScoringModel", "TabularMLP"]

TRUST_PICKLES = "MLINFRA_TRUST_PICKLED_MODELS"  # "1": load earlier mlinfra's pickled model.pt files
PREDICTED = "predicted_class"  # the pyfunc's column of the predicted class name


def write_outputs(folder: Path, classes: list[str]) -> None:
    """`outputs.json`: the scored columns' names (`prob_<class>` per class, `predicted_class`), which
    a registered model's pyfunc reads (it has no mlinfra to compute them)."""
    outputs = {"probabilities": [f"prob_{class_column(c)}" for c in classes], "predicted": PREDICTED}
    (folder / OUTPUTS).write_text(json.dumps(outputs))


@dataclass
class ScoringModel:
    """A trained model with its preprocessing: scores raw rows."""

    model: nn.Module
    pre: Preprocessor
    classes: list[str]
    version: str = "unregistered"
    # how monitoring turns its probabilities into calibrated ones (training.calibration); the
    # decision stays the argmax of `predict_proba`
    calibration: Calibration = field(default_factory=Calibration)

    def predict_proba(self, df: pd.DataFrame, batch_size: int = 65536) -> np.ndarray:
        return probabilities(self.model, self.pre, df, len(self.classes), batch_size)

    def save(self, folder: Path) -> None:
        """Write the weights as a state dict (`model.pt`), the layer sizes, the preprocessing,
        the classes and the scored columns' names as JSON. Loading rebuilds the net and reads
        tensors only: a model file from the registry never runs pickled code."""
        if not isinstance(self.model, TabularMLP):
            raise TypeError(
                f"ScoringModel.save writes TabularMLP models, not {type(self.model).__name__}: "
                "the saved architecture would not rebuild it"
            )
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), folder / WEIGHTS)
        (folder / ARCHITECTURE).write_text(json.dumps(self.model.architecture))
        (folder / PREPROCESSOR).write_text(self.pre.to_json())
        (folder / CLASSES).write_text(json.dumps(self.classes))
        write_outputs(folder, self.classes)
        (folder / CALIBRATION).write_text(self.calibration.to_json())

    @classmethod
    def load(cls, folder: Path, version: str = "unregistered") -> ScoringModel:
        """Rebuild the net from the JSON files and read its tensors. A folder written by an
        earlier mlinfra holds the pickled module instead; it is loaded only when the
        MLINFRA_TRUST_PICKLED_MODELS environment variable is "1" (unpickling runs code)."""
        if (folder / ARCHITECTURE).exists():
            model, pre, classes = load_net(folder)
            return cls(model, pre, classes, version, _calibration(folder))
        if os.environ.get(TRUST_PICKLES) != "1":
            raise FileNotFoundError(
                f"{folder} has no {ARCHITECTURE}: its model.pt is a pickled module written by an "
                "earlier mlinfra, not loaded by default (unpickling runs code). Re-materialize "
                f"training/model to register the model in the current format, or set {TRUST_PICKLES}=1 "
                "to load it if you trust the file"
            )
        pre = Preprocessor.from_json((folder / PREPROCESSOR).read_text())
        classes = json.loads((folder / CLASSES).read_text())
        model = torch.load(folder / WEIGHTS, weights_only=False, map_location="cpu")
        return cls(model.eval(), pre, classes, version, _calibration(folder))


def _calibration(folder: Path) -> Calibration:
    """The folder's calibration, or none (with the reason) for a model saved before calibration."""
    path = folder / CALIBRATION
    if path.exists():
        return Calibration.from_json(path.read_text())
    return Calibration(reason=f"not calibrated: {folder.name} has no {CALIBRATION} "
                                          "(saved by an earlier mlinfra); retrain to calibrate it")
