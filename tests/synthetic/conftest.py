"""Upstream tables for the synthetic stage, built per docs/tables.md without the labeling stage."""

from pathlib import Path

import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.spec import DatasetSpec
from tests.conftest import small_spec

FIT_ROWS = 3000
# ~270 fraud rows outside the holdout: at 6000 rows (~80 fraud rows) two halves of the real
# fraud rows score only ~0.73 against each other, so no synthesizer can pass the 0.8 gate there
DEMO_ROWS = 20_000


def synthetic_spec(**synthetic: object) -> DatasetSpec:
    """The demo at DEMO_ROWS rows, fitting the synthesizer on at most FIT_ROWS rows."""
    base = small_spec().synthetic.model_dump()
    return small_spec(rows=DEMO_ROWS, synthetic={**base, "fit_rows": FIT_ROWS, **synthetic})


def write_labeling_tables(path: str) -> None:
    """`labeling.weak_labels` from the oracle (confident, as a label model would be on easy rows)
    and an empty `labeling.gold_labels`, with the contract's columns."""
    con = duckdb.connect(path)
    con.execute("CREATE SCHEMA IF NOT EXISTS labeling")
    con.execute(
        """
        CREATE OR REPLACE TABLE labeling.weak_labels AS
        SELECT txn_id AS row_id,
               CASE WHEN label = 1 THEN 0.1 ELSE 0.9 END AS prob_legit,
               CASE WHEN label = 1 THEN 0.9 ELSE 0.1 END AS prob_fraud,
               CAST(label AS INTEGER) AS label,
               0.9 AS confidence,
               'oracle-fixture' AS label_model_version
        FROM oracle.labels
        """
    )
    con.execute(
        "CREATE OR REPLACE TABLE labeling.gold_labels "
        "(row_id BIGINT, label INTEGER, n_annotations INTEGER)"
    )
    con.close()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Resources whose warehouse holds the demo, raw rows, raw.gold and the labeling tables."""
    spec = synthetic_spec()
    resources = default_resources(Path(tmp_path_factory.mktemp("synthetic")) / "data")
    upstream_keys = [keys.source_key(spec), keys.SOURCE_ORACLE, keys.raw_key(spec), keys.QUARANTINE, keys.GOLD]
    run_assets(spec, resources, selection=upstream_keys)
    write_labeling_tables(resources["warehouse"].path)
    return resources
