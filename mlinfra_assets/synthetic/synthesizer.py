"""Fit, version, save and load the SDV synthesizer (Dagster-free).

Bounds: the synthesizer runs with `enforce_min_max_values=True`, so every numeric value it
samples lies within the range seen in the fit rows; the fit rows come from `raw`, which the
spec's Great Expectations suite keeps inside the spec's `min`/`max`. `check_bounds` verifies
the spec's bounds on every sampled batch and raises if one is broken.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.synthetic.data import LABEL

TABLE = "real"
ALLOWED_SDTYPES = {"numerical", "categorical", "ordinal", "boolean"}


@dataclass(frozen=True)
class FitResult:
    path: Path
    version: str
    rows: int
    seconds: float
    reused: bool
    sdtypes: dict[str, str]


def data_version(frame: pd.DataFrame, spec: DatasetSpec) -> str:
    """A short hash of the fit rows and the settings that shape the synthesizer."""
    import sdv

    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    settings = [spec.synthetic.synthesizer, sdv.__version__, *frame.columns, *spec.classes]
    digest.update("|".join(map(str, settings)).encode())
    return digest.hexdigest()[:16]


def build_metadata(frame: pd.DataFrame, spec: DatasetSpec) -> Any:
    """SDV metadata detected from the fit frame, corrected by the spec.

    No primary key; the label and the spec's categorical features are categorical; a numeric
    feature SDV took for an id or free text becomes numerical.
    """
    from sdv.metadata import Metadata

    metadata = Metadata.detect_from_dataframes({TABLE: frame})
    if metadata.tables[TABLE].primary_key is not None:
        metadata.remove_primary_key(TABLE)
    for column in [*spec.categorical, LABEL]:
        metadata.update_column(column, TABLE, sdtype="categorical")
    columns = metadata.tables[TABLE].columns
    for column in spec.numeric:
        if columns[column]["sdtype"] not in ALLOWED_SDTYPES:
            metadata.update_column(column, TABLE, sdtype="numerical")
    metadata.validate()
    return metadata


def fit_or_reuse(frame: pd.DataFrame, spec: DatasetSpec, folder: Path) -> FitResult:
    """Fit the spec's synthesizer on `frame`, or reuse the saved one of the same data version.

    Parameters
    ----------
    frame
        The fit rows: the spec's features and `label` (class names), no id column.
    spec
        The dataset spec (`synthetic.synthesizer`).
    folder
        Where `<version>.pkl` files (and their `<version>.metadata.json`) live.
    """
    if frame.empty:
        raise ValueError("no rows to fit the synthesizer on: labeling/weak_labels has no labeled rows")
    version = data_version(frame, spec)
    path = folder / f"{version}.pkl"
    metadata = build_metadata(frame, spec)
    sdtypes = {c: m["sdtype"] for c, m in metadata.tables[TABLE].columns.items()}
    if path.exists():
        return FitResult(path, version, len(frame), 0.0, True, sdtypes)
    from sdv.single_table import GaussianCopulaSynthesizer

    folder.mkdir(parents=True, exist_ok=True)
    metadata.save_to_json(str(folder / f"{version}.metadata.json"), mode="overwrite")
    start = time.perf_counter()
    synthesizer = GaussianCopulaSynthesizer(metadata, enforce_min_max_values=True, enforce_rounding=True)
    synthesizer.fit({TABLE: frame})
    seconds = time.perf_counter() - start
    partial = path.with_suffix(".pkl.partial")
    synthesizer.save(str(partial))
    os.replace(partial, path)  # atomic: a crash never leaves a half-written model
    return FitResult(path, version, len(frame), seconds, False, sdtypes)


def load(path: str | Path) -> Any:
    """Load a saved synthesizer, its sampling reset to the state right after fitting."""
    from sdv.utils import load_synthesizer

    if not Path(path).exists():
        raise FileNotFoundError(
            f"synthesizer file {path} is missing: re-materialize synthetic/synthesizer"
        )
    synthesizer = load_synthesizer(str(path))
    synthesizer.reset_sampling()
    return synthesizer


def check_bounds(frame: pd.DataFrame, spec: DatasetSpec) -> None:
    """Raise if a sampled numeric feature breaks the spec's `min`/`max`."""
    for column, feature in spec.features.numeric.items():
        values = frame[column].dropna()
        if feature.min is not None and (values < feature.min).any():
            raise ValueError(f"synthetic {column} below features.numeric.{column}.min = {feature.min}")
        if feature.max is not None and (values > feature.max).any():
            raise ValueError(f"synthetic {column} above features.numeric.{column}.max = {feature.max}")
