"""Build `labeling.label_matrix` inside DuckDB from the LFs' SQL and Python forms.

The matrix is written in one transaction, so a failed run leaves the previous matrix in
place. SQL LFs run as one `INSERT ... SELECT` over the raw table (the query's rows go
straight into the table, never through Python); their range is then checked from the
written table's storage statistics, without a second pass. Python LFs (vectorized,
row-wise) run on bounded chunks streamed from DuckDB; their votes are inserted in batches
of up to `FLUSH_BYTES` (straight into the matrix when every LF runs in Python, else into a
temporary table joined with the SQL votes). No dense matrix is ever held in pandas.
Vote columns are SMALLINT stored RLE-compressed (see `sql/label_matrix_table.sql`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from mlinfra_assets.labeling import sql_lfs
from mlinfra_assets.labeling.apply import apply_python
from mlinfra_assets.labeling.forms import choose_forms
from mlinfra_assets.labeling.lfs import LabelingFunctionError, LFSet
from mlinfra_assets.labeling.queries import load_sql
from mlinfra_assets.resources import Warehouse, transaction
from mlinfra_assets.spec import DatasetSpec

TABLE = "labeling.label_matrix"
PY_VOTES = "_mlinfra_python_votes"
VECTOR = 2048  # rows per DuckDB vector: chunks are whole vectors
FLUSH_BYTES = 64 * 2**20  # Python votes buffered per INSERT (each INSERT costs ~5 ms on its own)


@dataclass(frozen=True)
class MatrixRun:
    """What one label-matrix build did."""

    rows: int
    forms: dict[str, str]  # LF name -> form it ran in
    sql_seconds: float  # compiling and running the SQL LFs, writing the matrix included
    python_seconds: float  # streaming chunks through the Python LFs (and writing their votes)
    chunks: int


def raw_source(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, table: str | None = None) -> sql_lfs.Source:
    """The raw table as LFs see it: `row_id`, the timestamp (if the spec has one) and the feature columns."""
    table = table or spec.raw_table
    columns = [c for c in [spec.timestamp_column, *spec.feature_columns] if c]
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
    from mlinfra_assets import lake

    with warehouse.connect() as con:
        lake.refuse_other_engine(con, "duckdb", [table])
        source = raw_source(con, spec, source_table)
        started = time.perf_counter()
        sql_lfs.check_expressions(sql_part, source, lambda q: [str(t) for t in con.sql(q).types])
        id_type = _id_type(con, source)
        python_seconds, chunks, rows = 0.0, 0, 0
        try:
            with transaction(con):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
                con.execute(load_sql("label_matrix_table", table=table, columns=_columns(id_type, lf_set.names)))
                if py_part:
                    python_started = time.perf_counter()
                    into = table if not sql_part else PY_VOTES
                    chunks, rows = _python_votes(con, source, py_part, forms, spec, into, id_type)
                    python_seconds = time.perf_counter() - python_started
                if sql_part:
                    query = _matrix_sql(lf_set, sql_part, py_part, source)
                    rows = con.execute(load_sql("label_matrix_insert", table=table, query=query)).fetchall()[0][0]
                    _check_range(con, table, sql_part, source, spec.n_classes)
                if py_part and sql_part:
                    con.execute(f"DROP TABLE {PY_VOTES}")
        except duckdb.ConversionException as exc:  # a vote beyond SMALLINT: name its LF (after the rollback)
            found = sql_lfs.bad_vote([lf.name for lf in sql_part], sql_lfs.votes_sql(sql_part, source), source,
                                     spec.n_classes, lambda q: _first(con, q))
            if found is None:
                raise
            raise found from exc
    return MatrixRun(rows, forms, time.perf_counter() - started - python_seconds, python_seconds, chunks)


def _check_range(con: duckdb.DuckDBPyConnection, table: str, sql_part: list, source: sql_lfs.Source, n_classes: int) -> None:
    """Raise, naming the LF and its first offending row, if a written SQL vote is outside -1..k-1.

    Storage statistics bound every column (never narrower than the data, never a scan):
    within -1..k-1 proves the votes are; only otherwise are the rows searched.
    """
    stats = ", ".join(f'stats("{lf.name}")' for lf in sql_part)
    bounds = con.execute(load_sql("label_matrix_stats", stats=stats, table=table)).fetchall()
    if all(_within(s, n_classes) for s in (bounds[0] if bounds else ())):
        return
    found = sql_lfs.bad_vote([lf.name for lf in sql_part], f"SELECT * FROM {table}", source, n_classes,
                             lambda q: _first(con, q))
    if found is not None:
        raise found


def _within(stats: object, n_classes: int) -> bool:
    """Whether one column's `stats()` (DuckDB 2: a map with integer min and max) lies in -1..k-1."""
    if not isinstance(stats, dict):
        return False
    lo, hi = stats.get("min"), stats.get("max")
    return isinstance(lo, int) and isinstance(hi, int) and -1 <= lo and hi <= n_classes - 1


def _first(con: duckdb.DuckDBPyConnection, query: str) -> tuple | None:
    rows = con.execute(query).fetchall()
    return rows[0] if rows else None


def _matrix_sql(lf_set: LFSet, sql_part: list, py_part: list, source: sql_lfs.Source) -> str:
    if not py_part:
        return sql_lfs.matrix_sql(sql_part, source)
    in_sql = {lf.name for lf in sql_part}
    columns = ", ".join(["row_id", *(f'{"s" if n in in_sql else "p"}."{n}"' for n in lf_set.names)])
    return load_sql("label_matrix_join", columns=columns, sql_votes=sql_lfs.matrix_sql(sql_part, source), python_votes=PY_VOTES)


def _python_votes(
    con: duckdb.DuckDBPyConnection, source: sql_lfs.Source, lfs: list, forms: dict, spec: DatasetSpec,
    into: str, id_type: str,
) -> tuple[int, int]:
    """Stream the raw rows (by row_id) through the Python LFs, inserting their votes into `into`.

    `into` is the matrix itself (already created) or `PY_VOTES`, created here as a
    temporary table. Returns the chunks and the rows.
    """
    if into == PY_VOTES:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {PY_VOTES} ({_columns(id_type, [lf.name for lf in lfs])})")
    reader = con.cursor()
    chunks, rows, batch, batch_rows = 0, 0, [], 0
    flush_rows = max(spec.labeling.chunk_rows, FLUSH_BYTES // (8 + 2 * len(lfs)))
    try:
        reader.execute(f"SELECT * FROM ({source.sql()}) AS src ORDER BY row_id")
        vectors = max(1, math.ceil(spec.labeling.chunk_rows / VECTOR))
        while True:
            chunk = reader.fetch_df_chunk(vectors)
            if chunk.empty:
                break
            batch.append(apply_python(chunk, lfs, forms, spec.classes))
            batch_rows += len(chunk)
            chunks += 1
            if batch_rows >= flush_rows:
                rows += _insert(con, into, batch)
                batch, batch_rows = [], 0
        if batch:
            rows += _insert(con, into, batch)
    finally:
        reader.close()
    if chunks == 0:
        raise LabelingFunctionError(f"{source.table} has no rows: materialize the raw partitions first")
    return chunks, rows


def _insert(con: duckdb.DuckDBPyConnection, into: str, batch: list[pa.Table]) -> int:
    votes = pa.concat_tables(batch)
    con.register("_mlinfra_chunk_votes", votes)
    try:
        return con.execute(load_sql("label_matrix_insert", table=into, query="SELECT * FROM _mlinfra_chunk_votes")).fetchall()[0][0]
    finally:
        con.unregister("_mlinfra_chunk_votes")


def _columns(id_type: str, names: list[str]) -> str:
    """Column definitions of a matrix: the id, then one RLE-compressed SMALLINT per LF."""
    return ", ".join([f"row_id {id_type}", *(f'"{n}" SMALLINT USING COMPRESSION rle' for n in names)])


def _id_type(con: duckdb.DuckDBPyConnection, source: sql_lfs.Source) -> str:
    rows = con.execute(f"SELECT column_type FROM (DESCRIBE {source.table}) WHERE column_name = ?", [source.id_column]).fetchall()
    return rows[0][0]
