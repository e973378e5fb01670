"""The frozen holdout: membership is MD5 of the id as text (the platform's own hash, equal to a
hashlib computation), a 10% share by default, and the same ids after the warehouse is reloaded."""

import hashlib
import subprocess
import sys

import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.holdout import holdout_bucket_sql, holdout_predicate
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.spec import PROJECT_ROOT
from tests.conftest import small_spec

IDS = [
    *range(-5, 3000),  # integers (their text is what both sides hash)
    *(f"txn-{i:05d}" for i in range(1500)),
    "élan", "日本", "a b", "", "0", "00", "9223372036854775807", "-1.5",
]


def python_bucket(row_id: object) -> int:
    """The definition, independently of DuckDB: MD5 of the id as UTF-8 text, first 8 hex digits, mod 100."""
    return int(hashlib.md5(str(row_id).encode("utf-8")).hexdigest()[:8], 16) % 100


def test_the_default_holdout_is_ten_percent():
    assert small_spec().training.holdout_percent == 10


@pytest.mark.parametrize("percent", [10, 30])
def test_sql_membership_equals_a_hashlib_computation(percent):
    spec = small_spec(training={**small_spec().training.model_dump(), "holdout_percent": percent})
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[str(i)] for i in IDS])
    con.execute("CREATE TABLE ints AS SELECT range AS id FROM range(-5, 3000)")  # a BIGINT id column too
    buckets = dict(con.execute(f"SELECT id, {holdout_bucket_sql('id')} FROM t").fetchall())
    assert buckets == {str(i): python_bucket(i) for i in IDS}
    held = {r[0] for r in con.execute(f"SELECT id FROM t WHERE {holdout_predicate(spec, 'id')}").fetchall()}
    assert held == {str(i) for i in IDS if python_bucket(i) < percent}
    held_ints = {r[0] for r in con.execute(f"SELECT id FROM ints WHERE {holdout_predicate(spec, 'id')}").fetchall()}
    assert held_ints == {i for i in range(-5, 3000) if python_bucket(i) < percent}
    con.close()
    share = len(held) / len(IDS)
    assert abs(share - percent / 100) < 0.02, share  # the share is kept: the hash spreads the ids evenly


HOLDOUT_IDS = "SELECT CAST(txn_id AS VARCHAR) FROM raw.transactions WHERE {predicate} ORDER BY 1"


def _ingest(spec, root):
    resources = default_resources(root / "data")
    run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE, keys.raw_key(spec), keys.QUARANTINE])
    return resources["warehouse"].path


def test_membership_is_the_same_after_a_reload(tmp_path):
    """The same demo ingested into two warehouses, read back by a fresh interpreter: the same
    holdout rows, and exactly those hashlib puts there."""
    spec = small_spec(rows=2000)
    first = _ingest(spec, tmp_path / "one")
    query = HOLDOUT_IDS.format(predicate=holdout_predicate(spec, "txn_id"))
    con = duckdb.connect(first, read_only=True)
    held = [r[0] for r in con.execute(query).fetchall()]
    every = [r[0] for r in con.execute("SELECT CAST(txn_id AS VARCHAR) FROM raw.transactions").fetchall()]
    con.close()
    assert held == sorted(i for i in every if python_bucket(i) < spec.training.holdout_percent)
    assert 0.07 < len(held) / len(every) < 0.13
    second = _ingest(spec, tmp_path / "two")
    reread = subprocess.run(
        [sys.executable, "-c",
         "import sys, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); "
         "print('\\n'.join(r[0] for r in con.execute(sys.argv[2]).fetchall()))", second, query],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, check=True,
    )
    assert reread.stdout.split() == held
