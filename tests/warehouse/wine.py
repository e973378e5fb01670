"""A table the platform has never seen, for the warehouse and monitoring tests: scikit-learn's
wine data (3 classes, names as strings) as CSV files without a timestamp and without an id."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlinfra_assets.spec import DatasetSpec

CLASSES = ["class_0", "class_1", "class_2"]
LFS = '''from mlinfra_assets.labeling.forms import sql_labeling_function

proline_high = sql_labeling_function("proline_high", "CASE WHEN proline > 1000 THEN 0 END")
hue_low = sql_labeling_function("hue_low", "CASE WHEN hue < 0.7 THEN 2 END")
'''


def wine_frame() -> pd.DataFrame:
    """The 178 wine rows, features with plain names and the class name in `target`, shuffled."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace("/", "_"))
    frame["target"] = [CLASSES[i] for i in frame["target"]]
    return frame.sample(frac=1.0, random_state=7).reset_index(drop=True)


def features(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c != "target"]


def wine_spec(root: Path, path: str = "incoming/*.csv", kind: str = "csv", **extra: object) -> DatasetSpec:
    """A spec written as `mlinfra init` would (no id, no timestamp, gold in the source's column),
    with its paths relative to `root` (the spec's folder)."""
    frame = wine_frame()
    (root / "lfs.py").write_text(LFS)
    spec = DatasetSpec.model_validate({
        "name": "wine",
        "source": {"kind": kind, "path": path, "name": "wine"},
        "features": {"numeric": {c: {} for c in features(frame)}},
        "classes": CLASSES,
        "labeling_functions": "lfs.py",
        "gold": {"column": "target"},
        **extra,
    })
    spec.spec_path = root / "spec.yaml"
    return spec


def write_batch(root: Path, name: str, frame: pd.DataFrame) -> Path:
    folder = root / "incoming"
    folder.mkdir(exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False)
    return path
