"""Small public data sets (scikit-learn's wine and breast cancer) as a warehouse the training and
edge stages can read: the raw table, stand-ins for the labeling and synthetic tables, and a spec
without timestamp and (by default) without gold."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.holdout import holdout_predicate
from mlinfra_assets.spec import DatasetSpec


def dataset(name: str, rename: dict[str, str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """(frame of features + `target` (class index) + `item_id`, class names) of a scikit-learn set;
    feature names made identifiers, then `rename` applied."""
    from sklearn import datasets

    loader = {"wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}[name]
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: re.sub(r"[^A-Za-z0-9_]", "_", c).strip("_"))
    frame = frame.rename(columns=rename or {})
    frame.insert(0, "item_id", np.arange(1, len(frame) + 1))
    return frame, [str(c) for c in bunch.target_names]


def spec_for(name: str, frame: pd.DataFrame, classes: list[str], **sections: object) -> DatasetSpec:
    """A spec over `raw.<name>` (id `item_id`, every other column but `target` numeric), no gold."""
    features = [c for c in frame.columns if c not in ("item_id", "target")]
    data = {
        "name": name,
        "source": {"kind": "duckdb_table", "table": f"src.{name}", "name": name},
        "id_column": "item_id",
        "features": {"numeric": {c: {} for c in features}},
        "classes": classes,
        "labeling_functions": "tests.no_lfs",
        "training": {"epochs": 30, "batch_size": 64, "hidden": [32, 16], "holdout_percent": 30},
        "edge": {"prune_amounts": [0.5], "finetune_rows": 200},
        **sections,
    }
    return DatasetSpec.model_validate(data)


def write_warehouse(path: str, spec: DatasetSpec, frame: pd.DataFrame, annotate_holdout: bool = True,
                    seed: int = 0) -> dict[str, int]:
    """raw.<name>, labeling.weak_labels (noisy soft labels of every row), labeling.gold_labels
    (annotations: a third of the training rows and, with `annotate_holdout`, every holdout row)
    and an empty synthetic.synthetic_rows. Returns row counts."""
    from pathlib import Path

    rng = np.random.default_rng(seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(path)
    try:
        for schema in ("raw", "labeling", "synthetic"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        raw = frame.drop(columns="target")
        con.register("_raw", raw)
        con.execute(f"CREATE OR REPLACE TABLE {spec.raw_table} AS SELECT * FROM _raw")
        con.unregister("_raw")
        ids = frame["item_id"].astype(str)
        holdout = con.execute(
            f"SELECT CAST(item_id AS VARCHAR) AS id, {holdout_predicate(spec, 'item_id')} AS h "
            f"FROM {spec.raw_table} ORDER BY item_id").df().set_index("id")["h"].reindex(ids).to_numpy()
        y = frame["target"].to_numpy()
        k = spec.n_classes
        noisy = np.where(rng.random(len(y)) < 0.2, rng.integers(0, k, len(y)), y)  # 20% of the votes random
        probs = np.full((len(y), k), 0.2 / max(k - 1, 1))
        probs[np.arange(len(y)), noisy] = 0.8
        weak = pd.DataFrame(probs, columns=spec.prob_columns)
        weak.insert(0, "row_id", ids.to_numpy())
        weak["label"] = noisy.astype("int16")
        annotated = (~holdout & (rng.random(len(y)) < 1 / 3)) | (holdout & annotate_holdout)
        gold = pd.DataFrame({"row_id": ids[annotated].to_numpy(), "label": y[annotated], "n_annotations": 1})
        synthetic = raw.iloc[:0].drop(columns="item_id").assign(_label=pd.Series(dtype="int64"),
                                                                 _synthetic_id=pd.Series(dtype="int64"))
        for table, df in (("labeling.weak_labels", weak), ("labeling.gold_labels", gold),
                          ("synthetic.synthetic_rows", synthetic)):
            con.register("_df", df)
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _df")
            con.unregister("_df")
    finally:
        con.close()
    return {"rows": len(y), "holdout": int(holdout.sum()), "annotated": int(annotated.sum())}


def label_holdout(path: str, spec: DatasetSpec, frame: pd.DataFrame) -> int:
    """Add the true label of every holdout row to labeling.gold_labels (annotators catching up)."""
    con = duckdb.connect(path)
    try:
        truth = frame[["item_id", "target"]].assign(row_id=frame["item_id"].astype(str))
        con.register("_truth", truth)
        con.execute(
            "INSERT INTO labeling.gold_labels SELECT t.row_id, t.target, 1 FROM _truth t "
            f"WHERE {holdout_predicate(spec, 't.item_id')} "
            "AND t.row_id NOT IN (SELECT row_id FROM labeling.gold_labels)")
        con.unregister("_truth")
        return int(con.execute("SELECT count(*) FROM labeling.gold_labels").fetchall()[0][0])
    finally:
        con.close()
