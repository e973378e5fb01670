"""`mlinfra query`: one statement that DuckDB's parser calls a read, no file access, one line and
exit 2 for every bad query, a clear word while a run holds the warehouse, any current folder."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from mlinfra_assets import cli
from mlinfra_assets.query import QueryFailed, QueryRefused, run_query
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.warehouse_file import WarehouseBusy

MLINFRA = str(Path(sys.executable).parent / "mlinfra")


@pytest.fixture
def warehouse(tmp_path):
    """A data folder holding warehouse.duckdb with main.t (x = 0..4) and a CSV beside it."""
    path = tmp_path / "data" / "warehouse.duckdb"
    path.parent.mkdir()
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(5)")
    con.close()
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    return Warehouse(path=str(path))


def rows(warehouse: Warehouse) -> int:
    con = duckdb.connect(warehouse.path, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM t").fetchall()[0][0]
    finally:
        con.close()


def test_select_returns_rows(warehouse):
    assert run_query(warehouse.path, "SELECT sum(x) AS s FROM t;")["s"][0] == 10


def test_a_semicolon_in_a_string_is_one_statement(warehouse):
    out = run_query(warehouse.path, "SELECT 'a;b' AS s, count(*) AS n FROM t WHERE x::VARCHAR <> ';'")
    assert out["s"].tolist() == ["a;b"] and out["n"].tolist() == [5]


@pytest.mark.parametrize("sql, columns", [
    ("WITH u AS (SELECT x FROM t) SELECT max(x) AS m FROM u", ["m"]),
    ("FROM t SELECT x WHERE x > 2", ["x"]),
    ("DESCRIBE t", ["column_name"]),
    ("SUMMARIZE t", ["column_name"]),
    ("SHOW ALL TABLES", ["name"]),
    ("EXPLAIN SELECT * FROM t", ["explain_key"]),
    ("EXPLAIN ANALYZE SELECT count(*) FROM t", ["explain_key"]),
])
def test_read_statements_run(warehouse, sql, columns):
    out = run_query(warehouse.path, sql)
    assert len(out) > 0 and set(columns) <= set(out.columns)


@pytest.mark.parametrize("sql, kind", [
    ("DROP TABLE t", "DROP"),
    ("INSERT INTO t VALUES (1)", "INSERT"),
    ("WITH u AS (SELECT 1 AS x) INSERT INTO t SELECT x FROM u", "INSERT"),
    ("WITH u AS (SELECT 1 AS x) DELETE FROM t WHERE x IN (SELECT x FROM u)", "DELETE"),
    ("/* SELECT */ UPDATE t SET x = 0", "UPDATE"),
    ("EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN of DELETE"),
    ("COPY t TO 'x.csv'", "COPY"),
    ("CREATE TABLE u AS SELECT * FROM t", "CREATE"),
    ("ATTACH ':memory:' AS m", "ATTACH"),
    ("SET enable_external_access = true", "SET"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("INSTALL httpfs", "LOAD"),
    ("SELECT 1; DROP TABLE t", "one statement at a time (2 given)"),
    ("  ;  ", "no SQL statement"),
])
def test_anything_but_one_read_is_refused_by_the_parser(warehouse, sql, kind):
    with pytest.raises(QueryRefused, match="^" + re.escape(kind)):
        run_query(warehouse.path, sql)
    assert rows(warehouse) == 5


def test_files_are_off_in_the_query_connection(warehouse, tmp_path):
    csv = str(tmp_path / "secret.csv")
    con = duckdb.connect()  # an ordinary connection reads it: the refusal below is the setting's
    assert con.execute("SELECT count(*) FROM read_csv(?)", [csv]).fetchall() == [(1,)]
    con.close()
    for sql in (f"SELECT * FROM read_csv('{csv}')", "SELECT * FROM read_text('/etc/passwd')",
                f"SELECT * FROM glob('{tmp_path}/*')"):
        with pytest.raises(QueryFailed, match="disabled by configuration.*no files"):
            run_query(warehouse.path, sql)


def query_cli(capsys, monkeypatch, warehouse: Warehouse, sql: str) -> tuple[int, str, str]:
    """`mlinfra query --data-dir DIR SQL` in this process: exit code, stdout, stderr."""
    monkeypatch.setenv("MLINFRA_DATA_DIR", "unset")  # restored after the test (main sets it)
    monkeypatch.delenv("MLINFRA_WAREHOUSE", raising=False)
    code = cli.main(["query", "--data-dir", str(Path(warehouse.path).parent), sql])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("sql, names", [
    ("DROP TABLE t", "refused: DROP is not a read statement"),
    ("WITH u AS (SELECT 1 AS x) INSERT INTO t SELECT x FROM u", "refused: INSERT is not a read statement"),
    ("SELECT * FROM no_such_table", "no_such_table does not exist"),
    ("SELECT no_such_column FROM t", '"no_such_column" not found'),
    ("SELECT * FROM read_csv('/etc/passwd')", '"/etc/passwd" - file system operations are disabled'),
    ("SELEC x FROM t", 'syntax error at or near "SELEC"'),
])
def test_a_bad_query_is_one_line_and_exit_2(capsys, monkeypatch, warehouse, sql, names):
    code, out, err = query_cli(capsys, monkeypatch, warehouse, sql)
    assert code == 2 and out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert names in err and "Traceback" not in err
    assert rows(warehouse) == 5


def test_the_cli_prints_the_rows(capsys, monkeypatch, warehouse):
    code, out, err = query_cli(capsys, monkeypatch, warehouse, "SELECT 'a;b' AS s, max(x) AS top FROM t")
    assert (code, err) == (0, "")
    assert out.split() == ["s", "top", "a;b", "4"]


def test_the_warehouse_is_found_from_the_spec_not_the_current_folder(capsys, monkeypatch, warehouse, tmp_path):
    """A relative --spec from another folder: data/ beside the spec is read, not the current
    folder's data/ (a decoy with another t); a missing table names the file it looked in."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: elsewhere\n")  # the query reads only the data folder beside it
    elsewhere = tmp_path / "work"
    (elsewhere / "data").mkdir(parents=True)
    decoy = duckdb.connect(str(elsewhere / "data" / "warehouse.duckdb"))
    decoy.execute("CREATE TABLE t AS SELECT 99 AS x")
    decoy.close()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("MLINFRA_SPEC", "unset")  # restored after the test (main sets it)
    for name in ("MLINFRA_DATA_DIR", "MLINFRA_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["query", "--spec", "../spec.yaml", "SELECT max(x) AS top FROM t; "]) == 0
    assert capsys.readouterr().out.split() == ["top", "4"]
    assert cli.main(["query", "--spec", "../spec.yaml", "SELECT * FROM t JOIN nope USING (x)"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope does not exist" in err and warehouse.path in err, err


def test_the_installed_command_gives_one_line_and_exit_2(warehouse, tmp_path):
    """The console script itself, from another folder: stderr is the one line, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLINFRA_")}
    bad = subprocess.run([MLINFRA, "query", "--data-dir", "data", "WITH u AS (SELECT 1) DELETE FROM t"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.startswith("refused: DELETE is not a read") and bad.stderr.count("\n") == 1, bad.stderr
    assert rows(warehouse) == 5


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
            run_query(warehouse.path, "SELECT 1", wait_s=1.0)
        assert time.monotonic() - started >= 1.0
    finally:
        holder.kill()
        holder.wait()
