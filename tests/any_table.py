"""Tables the demo never saw (scikit-learn's, shipped with the package) as frames and specs,
shared by the stage tests that land them by hand in a small warehouse."""

import re
from pathlib import Path

import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec


def sklearn_frame(name: str, per_class: dict[int, int] | None = None) -> pd.DataFrame:
    """`load_<name>` as a frame: `id`, the features (names made identifiers), `target` (class
    name); `per_class` keeps at most that many rows of a class (the first ones)."""
    import sklearn.datasets

    data = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    frame = data.frame.rename(columns=lambda c: re.sub(r"[^A-Za-z0-9_]", "_", c))
    frame.insert(0, "id", np.arange(len(frame)) + 1000)
    frame["target"] = [str(data.target_names[k]) for k in data.target]
    if per_class:
        keep = frame.groupby(data.target.to_numpy()).cumcount() < data.target.map(
            lambda k: per_class.get(int(k), len(frame)))
        frame = frame[keep.to_numpy()].reset_index(drop=True)
    return frame


def table_spec(folder: Path, frame: pd.DataFrame, classes: list[str], gold: bool = True,
               **sections: object) -> DatasetSpec:
    """A spec for `frame` (id `id`, target `target`, every other column numeric, LFs in
    `lfs.py` beside it); `sections` set or replace top-level sections of the spec."""
    features = [c for c in frame.columns if c not in ("id", "target")]
    spec = DatasetSpec.model_validate({
        "name": "t",
        "source": {"kind": "csv", "path": "t.csv", "name": "t"},
        "id_column": "id",
        "features": {"numeric": features},
        "classes": classes,
        "labeling_functions": "lfs.py",
        "gold": {"column": "target"} if gold else None,
        "annotator": {"simulated": False},
        **sections,
    })
    spec.spec_path = folder / "spec.yaml"
    return spec
