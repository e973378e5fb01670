"""A demo warehouse built once per module and copied for each test."""

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlinfra_assets import keys
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from tests.conftest import small_spec

ROWS = 8000


def pool_rows(spec, n: int, start: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` rows of the spec's features (normal numerics, categories drawn uniformly) with
    row_id start..start+n-1."""
    df = pd.DataFrame({c: rng.normal(size=n) for c in spec.numeric})
    for c in spec.categorical:
        df[c] = rng.choice(spec.features.categorical[c].values, n)
    df["row_id"] = np.arange(start, start + n)
    return df


def warehouse_assets(spec) -> list:
    return [keys.source_key(spec), keys.SOURCE_ORACLE, keys.raw_key(spec), keys.QUARANTINE, keys.GOLD]


def labeling_spec(**updates: object):
    """The demo at 8000 rows; `updates` replace top-level sections (e.g. annotator)."""
    return small_spec(rows=ROWS, **updates)


@pytest.fixture(scope="module")
def base_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's source and raw tables at 8000 rows, materialized once per module."""
    root = tmp_path_factory.mktemp("base") / "data"
    resources = default_resources(root)
    spec = labeling_spec()
    run_assets(spec, resources, selection=warehouse_assets(spec))
    return Path(resources["warehouse"].path)


@pytest.fixture
def resources(base_warehouse: Path, tmp_path: Path) -> dict:
    """Resources in tmp_path with a copy of the module's warehouse."""
    res = default_resources(tmp_path / "data")
    Path(res["warehouse"].path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(base_warehouse, res["warehouse"].path)
    return res


def sql(resources: dict, query: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


def metadata(result, key) -> dict:
    """The metadata values of the last materialization of `key` in a run."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    assert events, f"{key.to_user_string()} was not materialized"
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}
