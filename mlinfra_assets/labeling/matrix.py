"""Build `labeling.label_matrix` inside DuckDB from the LFs' SQL and Python forms.

SQL LFs run as one query over the raw table. Python LFs (vectorized, row-wise) run on
bounded chunks streamed from DuckDB, their votes going into a temporary table; the matrix
is then written in one transaction (SQL votes joined with the Python votes), so a failed
run leaves the previous matrix in place. No dense matrix is ever held in pandas.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import duckdb

from mlinfra_assets.labeling import sql_lfs
from mlinfra_assets.labeling.apply import apply_python
from mlinfra_assets.labeling.forms import choose_forms
from mlinfra_assets.labeling.lfs import LabelingFunctionError, LFSet
from mlinfra_assets.labeling.queries import load_sql
from mlinfra_assets.resources import Warehouse, replace_table
from mlinfra_assets.spec import DatasetSpec

TABLE = "labeling.label_matrix"
PY_VOTES = "_mlinfra_python_votes"
VECTOR = 2048  # rows per DuckDB vector: chunks are whole vectors


@dataclass(frozen=True)
class MatrixRun:
    """What one label-matrix build did."""

    rows: int
    forms: dict[str, str]  # LF name -> form it ran in
    sql_seconds: float  # compiling and running the SQL LFs, writing the matrix included
    python_seconds: float  # streaming chunks through the Python LFs
    chunks: int


def raw_source(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, table: str | None = None) -> sql_lfs.Source:
    """The raw table as LFs see it: `row_id`, the timestamp and the feature columns."""
    table = table or spec.raw_table
    columns = [spec.timestamp_column, *spec.feature_columns]
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
    missing = [c for c in [spec.id_column, *columns] if c not in types]
    if missing:
        raise ValueError(f"{table} has no column(s) {missing} named by the spec: materialize the raw table first")
    floats = {c for c in columns if types[c] in ("DOUBLE", "FLOAT", "REAL")}
    if not con.execute(f"SELECT count(*) > 0 FROM {table}").fetchall()[0][0]:
        raise ValueError(f"{table} has no rows: materialize the raw partitions first")
    return sql_lfs.Source(table, spec.id_column, columns, floats)


def build_label_matrix(
    warehouse: Warehouse,
    spec: DatasetSpec,
    lf_set: LFSet,
    form: str = "fastest",
    source_table: str | None = None,
    table: str = TABLE,
) -> MatrixRun:
    """Run every LF on every raw row and replace `table` atomically.

    Parameters
    ----------
    warehouse
        The DuckDB warehouse (one write connection for the whole build).
    spec
        The dataset spec: raw table, columns, classes, `labeling.chunk_rows`.
    lf_set
        The LFs; each runs in its fastest form, or all in `form`.
    source_table, table
        Where the rows are read and the matrix written (defaults: raw table, label matrix).

    Raises
    ------
    LabelingFunctionError
        Naming the LF (and its first offending row) that does not compile, raises,
        returns the wrong length or votes outside -1..k-1. `table` is then unchanged.
    """
    forms = choose_forms(lf_set.lfs, form)
    sql_part = [lf for lf in lf_set.lfs if forms[lf.name] == "sql"]
    py_part = [lf for lf in lf_set.lfs if forms[lf.name] != "sql"]
    with warehouse.connect() as con:
        source = raw_source(con, spec, source_table)
        started = time.perf_counter()
        python_seconds, chunks = 0.0, 0
        if py_part:
            chunks = _python_votes(con, source, py_part, forms, spec)
            python_seconds = time.perf_counter() - started
        started = time.perf_counter()
        sql_lfs.check_expressions(sql_part, source, lambda q: [str(t) for t in con.sql(q).types])
        query = _matrix_sql(lf_set, sql_part, py_part, source, spec.n_classes)
        try:
            rows = replace_table(con, table, query)
        except duckdb.Error as exc:
            if sql_lfs.OUT_OF_RANGE not in str(exc):
                raise
            raise sql_lfs.first_bad_vote(sql_part, source, spec.n_classes, lambda q: _first(con, q)) from exc
        if py_part:
            con.execute(f"DROP TABLE IF EXISTS {PY_VOTES}")
    return MatrixRun(rows, forms, time.perf_counter() - started, python_seconds, chunks)


def _first(con: duckdb.DuckDBPyConnection, query: str) -> tuple | None:
    rows = con.execute(query).fetchall()
    return rows[0] if rows else None


def _matrix_sql(lf_set: LFSet, sql_part: list, py_part: list, source: sql_lfs.Source, n_classes: int) -> str:
    if not py_part:
        return sql_lfs.checked_sql(sql_part, source, n_classes)
    if not sql_part:
        return f"SELECT * FROM {PY_VOTES}"
    in_sql = {lf.name for lf in sql_part}
    columns = ", ".join(["row_id", *(f'{"s" if n in in_sql else "p"}."{n}"' for n in lf_set.names)])
    return load_sql(
        "label_matrix_join", columns=columns, sql_votes=sql_lfs.checked_sql(sql_part, source, n_classes), python_votes=PY_VOTES
    )


def _python_votes(con: duckdb.DuckDBPyConnection, source: sql_lfs.Source, lfs: list, forms: dict, spec: DatasetSpec) -> int:
    """Stream the raw rows (by row_id) through the Python LFs into a temporary table."""
    cols = ", ".join([f"row_id {_id_type(con, source)}", *(f'"{lf.name}" SMALLINT' for lf in lfs)])
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PY_VOTES} ({cols})")
    reader = con.cursor()
    chunks = 0
    try:
        reader.execute(f"SELECT * FROM ({source.sql()}) AS src ORDER BY row_id")
        vectors = max(1, math.ceil(spec.labeling.chunk_rows / VECTOR))
        while True:
            chunk = reader.fetch_df_chunk(vectors)
            if chunk.empty:
                break
            votes = apply_python(chunk, lfs, forms, spec.n_classes)
            con.register("_mlinfra_chunk_votes", votes)
            con.execute(f"INSERT INTO {PY_VOTES} SELECT * FROM _mlinfra_chunk_votes")
            con.unregister("_mlinfra_chunk_votes")
            chunks += 1
    finally:
        reader.close()
    if chunks == 0:
        raise LabelingFunctionError(f"{source.table} has no rows: materialize the raw partitions first")
    return chunks


def _id_type(con: duckdb.DuckDBPyConnection, source: sql_lfs.Source) -> str:
    rows = con.execute(f"SELECT column_type FROM (DESCRIBE {source.table}) WHERE column_name = ?", [source.id_column]).fetchall()
    return rows[0][0]
