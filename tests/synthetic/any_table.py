"""Tables the demo never saw (sklearn's wine: 3 classes, digits: 10 classes), landed by hand in a
small warehouse with the labeling stage's tables, for the synthetic stage alone."""

import re
from pathlib import Path

import duckdb
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


def table_spec(folder: Path, frame: pd.DataFrame, classes: list[str], gold: bool, **synthetic: object) -> DatasetSpec:
    """A spec for `frame` (id `id`, target `target`, every other column numeric)."""
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
        "synthetic": {"fit_rows": 2000, "privacy": {"rows": 500}, **synthetic},
    })
    spec.spec_path = folder / "spec.yaml"
    return spec


def land(warehouse_path: str, spec: DatasetSpec, frame: pd.DataFrame) -> None:
    """raw.<name>; labeling.weak_labels as a confident label model would write them (the
    target's class with probability 0.9); an empty labeling.gold_labels; raw.gold with gold."""
    index = frame["target"].map({c: i for i, c in enumerate(spec.classes)}).to_numpy()
    probs = np.full((len(frame), spec.n_classes), 0.1 / (spec.n_classes - 1))
    probs[np.arange(len(frame)), index] = 0.9
    weak = pd.DataFrame(probs, columns=spec.prob_columns)
    weak.insert(0, "row_id", frame["id"].astype(str))
    weak["label"] = index.astype("int32")
    weak["confidence"] = 0.9
    weak["label_model_version"] = "fixture"
    con = duckdb.connect(warehouse_path)
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS labeling")
        con.register("raw_frame", frame[["id", *spec.feature_columns]])
        con.register("weak_frame", weak)
        con.execute(f"CREATE OR REPLACE TABLE {spec.raw_table} AS SELECT * FROM raw_frame")
        con.execute("CREATE OR REPLACE TABLE labeling.weak_labels AS SELECT * FROM weak_frame")
        con.execute("CREATE OR REPLACE TABLE labeling.gold_labels "
                    "(row_id VARCHAR, label INTEGER, n_annotations INTEGER)")
        if spec.gold is not None:
            con.register("gold_frame", pd.DataFrame({
                "row_id": frame["id"].astype(str), "label": index.astype("int32"), "class": frame["target"],
            }))
            con.execute("CREATE OR REPLACE TABLE raw.gold AS SELECT * FROM gold_frame")
    finally:
        con.close()
