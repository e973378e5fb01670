"""Tables the demo never saw (sklearn's wine: 3 classes, digits: 10 classes), landed by hand in a
small warehouse with the labeling stage's tables, for the synthetic stage alone."""

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from tests import any_table
from tests.any_table import sklearn_frame  # noqa: F401 - the stage tests import it from here


def table_spec(folder: Path, frame: pd.DataFrame, classes: list[str], gold: bool, **synthetic: object) -> DatasetSpec:
    """`tests.any_table.table_spec` with small synthetic settings (`synthetic` overrides them)."""
    return any_table.table_spec(folder, frame, classes, gold,
                                synthetic={"fit_rows": 2000, "privacy": {"rows": 500}, **synthetic})


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
