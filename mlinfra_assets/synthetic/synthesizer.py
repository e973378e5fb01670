"""Choose, fit, version, save and load the SDV synthesizer (Dagster-free).

Bounds: the synthesizer runs with `enforce_min_max_values=True`, so every numeric value it
samples lies within the range seen in the fit rows; `synthetic.constraints` are added as SDV
constraints; `check_bounds` and `constraints.check` verify every sampled batch and raise if
one is broken.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlinfra_assets.spec import SYNTHESIZERS, DatasetSpec
from mlinfra_assets.synthetic import constraints
from mlinfra_assets.synthetic.columns import TABLE, ColumnPlan, build_metadata, plan_columns
from mlinfra_assets.synthetic.data import LABEL

CLASSES = {
    "gaussian_copula": "GaussianCopulaSynthesizer",
    "ctgan": "CTGANSynthesizer",
    "tvae": "TVAESynthesizer",
    "copula_gan": "CopulaGANSynthesizer",
}
NEURAL = {"ctgan", "tvae", "copula_gan"}
assert set(CLASSES) == set(SYNTHESIZERS)


@dataclass(frozen=True)
class FitResult:
    path: Path
    version: str
    rows: int
    seconds: float
    reused: bool
    sdtypes: dict[str, str]
    plan: ColumnPlan


def settings(spec: DatasetSpec) -> dict[str, Any]:
    """The spec settings that shape the synthesizer (part of its version)."""
    s = spec.synthetic
    return {
        "synthesizer": s.synthesizer,
        "epochs": s.epochs if s.synthesizer in NEURAL else None,
        "metadata": s.metadata,
        "constraints": s.constraints,
        "max_categories": s.max_categories,
        "classes": spec.classes,
    }


def data_version(frame: pd.DataFrame, spec: DatasetSpec) -> str:
    """A short hash of the fit rows, the synthesizer settings and the SDV version."""
    import sdv

    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(json.dumps([settings(spec), sdv.__version__, list(frame.columns)], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def make(spec: DatasetSpec, metadata: Any) -> Any:
    """An unfitted SDV synthesizer of `synthetic.synthesizer` (CPU, seeded by the caller)."""
    import sdv.single_table

    name = spec.synthetic.synthesizer
    if name not in CLASSES:  # the spec validates it; a hand-built spec may not have been
        raise ValueError(f"synthetic.synthesizer {name!r} is unknown: choose one of {', '.join(CLASSES)}")
    kwargs: dict[str, Any] = {"enforce_min_max_values": True, "enforce_rounding": True}
    if name in NEURAL:
        kwargs.update(epochs=spec.synthetic.epochs, enable_gpu=False)
    return getattr(sdv.single_table, CLASSES[name])(metadata, **kwargs)


def fit_or_reuse(frame: pd.DataFrame, spec: DatasetSpec, folder: Path, seed: int = 0) -> FitResult:
    """Fit the spec's synthesizer on `frame`, or reuse the saved one of the same data version.

    Parameters
    ----------
    frame
        The fit rows: the spec's features and `_label` (class names), no id column.
    spec
        The dataset spec (`synthetic` section).
    folder
        Where `<version>.pkl` files (with `<version>.columns.json`, the column plan, and
        `<version>.metadata.json`) live.
    seed
        Seeds torch and numpy for the neural synthesizers.
    """
    if frame.empty:
        raise ValueError("no rows to fit the synthesizer on: labeling/weak_labels has no labeled rows")
    version = data_version(frame, spec)
    path = folder / f"{version}.pkl"
    plan = plan_columns(frame, spec)
    modeled = frame[[*plan.modeled, LABEL]]
    metadata = build_metadata(modeled, spec)
    sdtypes = {c: m["sdtype"] for c, m in metadata.tables[TABLE].columns.items()}
    if path.exists() and path.with_suffix(".columns.json").exists():
        return FitResult(path, version, len(frame), 0.0, True, sdtypes, plan)
    import numpy as np
    import torch

    rules = constraints.to_sdv(constraints.parse(spec), plan.modeled)
    synthesizer = make(spec, metadata)
    if rules:
        synthesizer.add_constraints(rules)
    folder.mkdir(parents=True, exist_ok=True)
    metadata.save_to_json(str(folder / f"{version}.metadata.json"), mode="overwrite")
    torch.manual_seed(seed)
    np.random.seed(seed)
    start = time.perf_counter()
    synthesizer.fit({TABLE: modeled})
    seconds = time.perf_counter() - start
    plan_path = path.with_suffix(".columns.json")
    plan_path.write_text(json.dumps(plan.to_json()))
    partial = path.with_suffix(".pkl.partial")
    synthesizer.save(str(partial))
    os.replace(partial, path)  # atomic, and last: a crash never leaves a half-written model
    return FitResult(path, version, len(frame), seconds, False, sdtypes, plan)


@dataclass
class Model:
    """A saved synthesizer and its column plan: sampled rows carry every feature."""

    synthesizer: Any
    plan: ColumnPlan

    def metadata(self) -> Any:
        return self.synthesizer.get_metadata()


def load(path: str | Path) -> Model:
    """Load a saved synthesizer, its sampling reset to the state right after fitting."""
    from sdv.utils import load_synthesizer

    plan_path = Path(path).with_suffix(".columns.json")
    if not Path(path).exists() or not plan_path.exists():
        raise FileNotFoundError(f"synthesizer file {path} is missing: re-materialize synthetic/synthesizer")
    synthesizer = load_synthesizer(str(path))
    synthesizer.reset_sampling()
    return Model(synthesizer, ColumnPlan.from_json(json.loads(plan_path.read_text())))


def check_bounds(frame: pd.DataFrame, spec: DatasetSpec) -> None:
    """Raise if a sampled numeric feature breaks the spec's `min`/`max`."""
    for column, feature in spec.features.numeric.items():
        values = frame[column].dropna()
        if feature.min is not None and (values < feature.min).any():
            raise ValueError(f"synthetic {column} below features.numeric.{column}.min = {feature.min}")
        if feature.max is not None and (values > feature.max).any():
            raise ValueError(f"synthetic {column} above features.numeric.{column}.max = {feature.max}")
