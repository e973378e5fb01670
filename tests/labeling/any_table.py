"""Helpers for the labeling tests on tables the demo never saw: sklearn's wine (3 classes),
iris (string class names) and digits (10 classes), landed by hand in a small warehouse."""

from pathlib import Path

import duckdb
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from tests import any_table
from tests.any_table import sklearn_frame

# LFs a user writes for wine, in the three forms; rowwise and vectorized ones vote class NAMES
WINE_LFS = '''
import numpy as np
from snorkel.labeling import labeling_function

from mlinfra_assets.labeling.forms import ABSTAIN, sql_labeling_function, vectorized_labeling_function
from wine_helpers import PROLINE_HIGH  # a module beside this file: no PYTHONPATH needed

rich = sql_labeling_function("rich", f"CASE WHEN proline >= {PROLINE_HIGH} THEN 0 END")
light = sql_labeling_function("light", "CASE WHEN color_intensity < 3.5 THEN 1 END")


@vectorized_labeling_function()
def pale_hue(df):
    return np.where(df.hue < 0.75, "class_2", None)  # None abstains too


@vectorized_labeling_function()
def few_flavanoids(df):
    return np.select([df.flavanoids < 1.3, df.flavanoids > 2.8], ["class_2", "class_0"], None)


@labeling_function()
def weak_alcohol(x):
    return "class_1" if x.alcohol < 12.4 else ABSTAIN


@labeling_function()
def dark(x):
    return 2 if x.color_intensity > 7.5 else ABSTAIN
'''


def wine_frame() -> pd.DataFrame:
    return sklearn_frame("wine")


def table_spec(folder: Path, frame: pd.DataFrame, classes: list[str], lfs: str, gold: bool = True,
               **sections: object) -> DatasetSpec:
    """`tests.any_table.table_spec`, with `lfs` as `lfs.py` beside it (a sibling
    `wine_helpers.py` too)."""
    (folder / "lfs.py").write_text(lfs)
    (folder / "wine_helpers.py").write_text("PROLINE_HIGH = 1000\n")
    return any_table.table_spec(folder, frame, classes, gold, **sections)


def land(warehouse_path: str, spec: DatasetSpec, frame: pd.DataFrame) -> None:
    """raw.<name> (id + features) and, with gold, raw.gold (row_id text, label index, class)."""
    con = duckdb.connect(warehouse_path)
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.register("_raw", frame[["id", *spec.feature_columns]])
        con.execute(f"CREATE OR REPLACE TABLE {spec.raw_table} AS SELECT * FROM _raw")
        if spec.gold is not None:
            con.register("_gold", pd.DataFrame({
                "row_id": frame["id"].astype(str),
                "label": [spec.classes.index(str(v)) for v in frame["target"]],
                "class": frame["target"].astype(str),
            }))
            con.execute("CREATE OR REPLACE TABLE raw.gold AS SELECT * FROM _gold")
    finally:
        con.close()
