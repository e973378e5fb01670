"""Public tables that ship inside scikit-learn, written as a user's files, and the labeling
functions a user would write for them (plain rules on the features, never the labels).

Each case is what a new user has: a CSV or Parquet file, the `mlinfra init` command line for
it, and an LF module. Column names are snake_cased as a user exporting the table would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Case:
    name: str
    data: Path            # the file given to `mlinfra init`
    init_args: list[str]  # after the path
    lfs: str | None       # the LF module a user writes (None: keep the one init drafted)
    classes: int
    gold: str             # "source", "file" or "none"
    gold_file: Path | None = None
    notes: list[str] = field(default_factory=list)


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _frame(loader, rename: dict[str, str] | None = None, names: bool = False) -> pd.DataFrame:  # noqa: ANN001
    d = loader(as_frame=True)
    df = d.frame.rename(columns=_snake)
    if names:
        df["target"] = [str(d.target_names[t]) for t in df["target"]]
    return df.rename(columns=rename or {})


LF_HEADER = '''from mlinfra_assets.labeling.forms import sql_labeling_function as sql

ABSTAIN = -1
'''

BREAST_CANCER_LFS = LF_HEADER + '''
MALIGNANT, BENIGN = 0, 1  # classes [0, 1] as in the file's target column

big_cells = sql("big_cells", f"CASE WHEN weight >= 750 THEN {MALIGNANT} END")  # weight: the mean area
small_cells = sql("small_cells", f"CASE WHEN weight <= 450 THEN {BENIGN} END")
many_concave_points = sql("many_concave_points", f"CASE WHEN mean_concave_points >= 0.07 THEN {MALIGNANT} END")
few_concave_points = sql("few_concave_points", f"CASE WHEN mean_concave_points <= 0.03 THEN {BENIGN} END")
large_worst_radius = sql("large_worst_radius", f"CASE WHEN worst_radius >= 18 THEN {MALIGNANT} END")
small_worst_radius = sql("small_worst_radius", f"CASE WHEN worst_radius <= 13 THEN {BENIGN} END")
'''

WINE_LFS = LF_HEADER + '''
C0, C1, C2 = 0, 1, 2  # classes [0, 1, 2] as in the file's target column; `label` is the alcohol content

rich_in_proline = sql("rich_in_proline", f"CASE WHEN proline >= 1000 THEN {C0} END")
strong_and_phenolic = sql("strong_and_phenolic", f"CASE WHEN label >= 13.4 AND flavanoids >= 2.3 THEN {C0} END")
pale = sql("pale", f"CASE WHEN color_intensity <= 3.5 THEN {C1} END")
light = sql("light", f"CASE WHEN label <= 12.4 THEN {C1} END")
few_flavanoids = sql("few_flavanoids", f"CASE WHEN flavanoids <= 1.0 THEN {C2} END")
low_hue = sql("low_hue", f"CASE WHEN hue <= 0.78 THEN {C2} END")
'''

IRIS_LFS = LF_HEADER + '''
SETOSA, VERSICOLOR, VIRGINICA = 0, 1, 2  # classes [setosa, versicolor, virginica]

short_petals = sql("short_petals", f"CASE WHEN petal_length_cm <= 2.5 THEN {SETOSA} END")
medium_petals = sql("medium_petals", f"CASE WHEN petal_width_cm BETWEEN 1.0 AND 1.6 THEN {VERSICOLOR} END")
wide_petals = sql("wide_petals", f"CASE WHEN petal_width_cm >= 1.8 THEN {VIRGINICA} END")
long_petals = sql("long_petals", f"CASE WHEN petal_length_cm >= 5.2 THEN {VIRGINICA} END")
'''


def breast_cancer_gold_file(root: Path) -> Case:
    """Binary, numeric labels, gold in a separate CSV joined on the id, a feature named `weight`."""
    from sklearn.datasets import load_breast_cancer

    df = _frame(load_breast_cancer, {"mean_area": "weight"})
    df.insert(0, "patient_id", [f"p{i:04d}" for i in range(len(df))])
    path = root / "breast_cancer.csv"
    df.to_csv(path, index=False)
    return Case("breast_cancer", path, ["--target", "target", "--id", "patient_id"], BREAST_CANCER_LFS,
                classes=2, gold="file", gold_file=root / "diagnoses.csv")


def wine_generated_id(root: Path) -> Case:
    """3 classes, numeric labels, no id column (generated), a feature named `label`."""
    from sklearn.datasets import load_wine

    df = _frame(load_wine, {"alcohol": "label", "od280_od315_of_diluted_wines": "od280_od315"})
    path = root / "wine.csv"
    df.to_csv(path, index=False)
    return Case("wine", path, ["--target", "target"], WINE_LFS, classes=3, gold="source")


def iris_no_gold(root: Path) -> Case:
    """3 classes with string names, no gold at all: the annotators' answers are the holdout."""
    from sklearn.datasets import load_iris

    df = _frame(load_iris, names=True)
    df.insert(0, "flower_id", range(1, len(df) + 1))
    answers = df[["flower_id", "target"]]
    path = root / "iris.csv"
    df.drop(columns=["target"]).assign(species=df["target"]).to_csv(path, index=False)
    case = Case("iris", path, ["--target", "species", "--id", "flower_id"], IRIS_LFS, classes=3, gold="none")
    case.gold_file = root / "iris_answers.csv"
    answers.rename(columns={"flower_id": "row_id", "target": "label"}).to_csv(case.gold_file, index=False)
    return case


def digits(root: Path) -> Case:
    """10 classes, 64 features; the LF module is the one `mlinfra init` drafted."""
    from sklearn.datasets import load_digits

    df = _frame(load_digits)
    df.insert(0, "image_id", range(len(df)))
    path = root / "digits.parquet"
    df.to_parquet(path, index=False)
    return Case("digits", path, ["--target", "target", "--id", "image_id"], None, classes=10, gold="source")


def breast_cancer_hourly(root: Path) -> Case:
    """Binary, a Parquet file with an hourly timestamp (partitions by the hour)."""
    from sklearn.datasets import load_breast_cancer

    df = _frame(load_breast_cancer, {"mean_area": "weight"})
    df.insert(0, "patient_id", range(len(df)))
    df.insert(1, "seen_at", pd.Timestamp("2026-03-01") + pd.to_timedelta(df.index * 5, unit="min"))
    path = root / "visits.parquet"
    df.to_parquet(path, index=False)
    return Case("visits", path, ["--target", "target", "--id", "patient_id", "--timestamp", "seen_at"],
                BREAST_CANCER_LFS, classes=2, gold="source")


CASES = {
    "breast_cancer": breast_cancer_gold_file,
    "wine": wine_generated_id,
    "iris": iris_no_gold,
    "digits": digits,
    "visits": breast_cancer_hourly,
}
