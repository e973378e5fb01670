"""Monitoring fixtures: a small demo warehouse with and without drift, a training set, a model."""

from pathlib import Path

import duckdb
import pytest
import torch

from mlinfra_assets import keys
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training.model import Preprocessor, ScoringModel, TabularMLP
from tests.conftest import small_spec

ROWS = 8000
DRIFT_DAY = 15
TRAIN_END = "2026-01-11"  # the training set holds the real rows of the first ten days
SYNTHETIC_ROWS = 500


def drift_spec(day: int | None) -> DatasetSpec:
    demo = small_spec().demo.model_dump()
    demo.update(rows=ROWS, drift={"day": day, "covariate": True, "concept": True})
    return small_spec(rows=ROWS, demo=demo)


def write_training_set(path: str, spec: DatasetSpec) -> None:
    """training.training_set per docs/tables.md: gold rows of the first days, plus synthetic
    rows far from the data (the drift reference must leave them out)."""
    features = ", ".join(spec.feature_columns)
    con = duckdb.connect(path)
    con.execute("CREATE SCHEMA IF NOT EXISTS training")
    con.execute(
        f"""CREATE OR REPLACE TABLE training.training_set AS
        SELECT CAST(txn_id AS VARCHAR) AS _row_id, {features},
               1.0 - o.label AS prob_legit, o.label::DOUBLE AS prob_fraud, o.label AS _label,
               1.0 AS _weight, 'gold' AS _source
        FROM raw.transactions r JOIN oracle.labels o USING (txn_id)
        WHERE r._partition < DATE '{TRAIN_END}'
        UNION ALL
        SELECT 'syn-' || range::VARCHAR, 1000.0 * (range + 1), 50.0, 9, 3, 9000.0, 5000, 1, 0, 1,
               'atm', 'travel', 0.0, 1.0, 1, 0.3, 'synthetic'
        FROM range({SYNTHETIC_ROWS})"""
    )
    con.close()


def build_warehouse(root: Path, day: int | None) -> tuple[DatasetSpec, dict]:
    spec = drift_spec(day)
    resources = default_resources(root / "data")
    run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE])
    run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE])
    write_training_set(resources["warehouse"].path, spec)
    return spec, resources


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetSpec, dict]:
    return build_warehouse(tmp_path_factory.mktemp("shifted"), DRIFT_DAY)


@pytest.fixture(scope="module")
def stationary(tmp_path_factory: pytest.TempPathFactory) -> tuple[DatasetSpec, dict]:
    return build_warehouse(tmp_path_factory.mktemp("stationary"), None)


def fixture_model(spec: DatasetSpec, warehouse_path: str, version: str = "3") -> ScoringModel:
    """A small untrained (seeded) model on the training set's preprocessing: a stand-in champion."""
    con = duckdb.connect(warehouse_path, read_only=True)
    rows = con.execute("SELECT * FROM training.training_set WHERE _source <> 'synthetic'").df()
    con.close()
    torch.manual_seed(0)
    pre = Preprocessor.fit(rows, spec.numeric, spec.categorical)
    return ScoringModel(TabularMLP(pre, spec.n_classes, [16]), pre, spec.classes, version)


def register_champion(resources: dict, spec: DatasetSpec, model: ScoringModel) -> str:
    """Register `model` the way training does (run artifact `scoring_model`) and make it champion."""
    import tempfile

    import mlflow

    from mlinfra_assets.training import registry

    tracker = resources["mlflow"]
    tracker.activate()
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp))
        with mlflow.start_run() as run:
            mlflow.log_artifacts(tmp, artifact_path=registry.SCORING_ARTIFACT)
    client = mlflow.MlflowClient(
        tracking_uri=tracker.tracking_uri, registry_uri=tracker.tracking_uri
    )
    if not client.search_registered_models(filter_string=f"name = '{spec.name}'"):
        client.create_registered_model(spec.name)
    source = f"runs:/{run.info.run_id}/{registry.SCORING_ARTIFACT}"
    version = client.create_model_version(spec.name, source=source, run_id=run.info.run_id).version
    registry.set_alias(tracker, spec.name, registry.CHAMPION, str(version))
    return str(version)
