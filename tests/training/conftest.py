"""Fixtures of the training tests: the demo warehouse with stand-ins for the upstream stages.

The labeling and synthetic stages are built elsewhere; here their tables are made to the
contract of docs/tables.md from the demo's oracle: noisy soft weak labels, a few hundred gold
labels (enriched in positives, like an active-learning queue) and jittered positive copies.
"""

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlinfra_assets import keys
from mlinfra_assets.holdout import holdout_predicate
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.spec import DatasetSpec
from tests.conftest import small_spec

ROWS = 12_000
GOLD_ROWS, GOLD_POSITIVES, SYNTHETIC_ROWS = 300, 60, 120


def training_spec(**training: object) -> DatasetSpec:
    """The demo spec at test size, with fast training (few epochs) and `training` overrides."""
    base = small_spec(rows=ROWS)
    return small_spec(rows=ROWS, training={**base.training.model_dump(), "epochs": 6, **training})


def write_upstream(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, seed: int = 0) -> None:
    """labeling.weak_labels, labeling.gold_labels and synthetic.synthetic_rows from the oracle."""
    rng = np.random.default_rng(seed)
    rows = con.execute(
        f"SELECT r.txn_id AS row_id, o.label, {holdout_predicate(spec, 'r.txn_id')} AS holdout "
        "FROM raw.transactions r JOIN oracle.labels o USING (txn_id) ORDER BY row_id"
    ).df()
    y = rows["label"].to_numpy()
    u = rng.random(len(y))
    noisy = np.where(((y == 0) & (u < 0.01)) | ((y == 1) & (u < 0.2)), 1 - y, y)
    conf = 1 - rng.beta(1.0, 25.0, len(y))  # mostly confident, like a label model
    p_fraud = np.where(noisy == 1, conf, 1 - conf)
    abstain = rng.random(len(y)) < 0.03
    weak = pd.DataFrame({
        "row_id": rows["row_id"],
        "prob_legit": np.where(abstain, 0.98, 1 - p_fraud),
        "prob_fraud": np.where(abstain, 0.02, p_fraud),
        "label": np.where(abstain, -1, noisy).astype("int16"),
        "confidence": np.where(abstain, 0.98, np.maximum(p_fraud, 1 - p_fraud)),
        "label_model_version": "fixture",
    })
    pool = rows[~rows["holdout"]]
    positives = pool[pool["label"] == 1].sample(GOLD_POSITIVES, random_state=seed)
    others = pool.drop(positives.index).sample(GOLD_ROWS - GOLD_POSITIVES, random_state=seed)
    gold = pd.concat([positives, others])[["row_id", "label"]].assign(n_annotations=1)
    copies = con.execute(
        f"SELECT * FROM raw.transactions r JOIN oracle.labels o USING (txn_id) "
        f"WHERE o.label = 1 AND NOT {holdout_predicate(spec, 'r.txn_id')} ORDER BY txn_id"
    ).df().sample(SYNTHETIC_ROWS, replace=True, random_state=seed)
    synthetic = copies[spec.feature_columns].reset_index(drop=True)
    synthetic["amount"] = synthetic["amount"] * rng.lognormal(0, 0.1, len(synthetic))
    synthetic.insert(0, "_synthetic_id", np.arange(1, len(synthetic) + 1))
    synthetic["_label"] = 1
    synthetic["synthesizer_version"] = "fixture"
    for table, frame in (("labeling.weak_labels", weak), ("labeling.gold_labels", gold),
                         ("synthetic.synthetic_rows", synthetic)):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
        con.register("_frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _frame")
        con.unregister("_frame")


@pytest.fixture(scope="package")
def warehouse_resources(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Resources over one demo warehouse (raw ingested, upstream stand-ins written)."""
    spec = training_spec()
    resources = default_resources(tmp_path_factory.mktemp("training") / "data")
    run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE,
                                           keys.raw_key(spec), keys.QUARANTINE, keys.GOLD])
    con = duckdb.connect(resources["warehouse"].path)
    try:
        write_upstream(con, spec)
    finally:
        con.close()
    return resources


@pytest.fixture
def resources(warehouse_resources: dict, tmp_path: Path) -> dict:
    """The shared warehouse with a fresh MLflow store, data folder and IO manager per test."""
    fresh = default_resources(tmp_path / "data")
    return {**fresh, "warehouse": warehouse_resources["warehouse"]}


