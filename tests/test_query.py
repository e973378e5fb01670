"""`mlinfra query`: read-only, one statement, and a clear word while a run holds the warehouse."""

import subprocess
import sys
import time

import duckdb
import pytest

from mlinfra_assets.query import QueryRefused, run_query
from mlinfra_assets.resources import Warehouse, WarehouseBusy


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(5)")
    con.close()
    return Warehouse(path=str(path))


def test_select_returns_rows(warehouse):
    assert run_query(warehouse, "SELECT sum(x) AS s FROM t;")["s"][0] == 10


@pytest.mark.parametrize(
    "sql", ["DROP TABLE t", "INSERT INTO t VALUES (1)", "SELECT 1; DROP TABLE t", "COPY t TO 'x.csv'"]
)
def test_ddl_and_dml_are_refused(warehouse, sql):
    with pytest.raises(QueryRefused):
        run_query(warehouse, sql)
    assert run_query(warehouse, "SELECT count(*) AS n FROM t")["n"][0] == 5


def test_waits_then_says_the_warehouse_is_busy(warehouse):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({warehouse.path!r}); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(WarehouseBusy, match="locked by another process"):
            run_query(warehouse, "SELECT 1", wait_s=1.0)
        assert time.monotonic() - started >= 1.0
    finally:
        holder.kill()
        holder.wait()
