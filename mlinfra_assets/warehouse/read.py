"""Read a time window or a batch of the source, typed as the spec says, without losing a row.

Values that do not parse as the spec's type become NULL and the row carries a
`_type_errors` note (with the original text); rows whose timestamp belongs to no
partition (NULL, before the start, after the end or in the future) and CSV lines that
cannot be parsed at all come back separately, so ingest can quarantine them. The source is
read through `source_select`, so a generated id is the same here as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from mlinfra_assets.spec import DatasetSpec, SpecError
from mlinfra_assets.warehouse.source import FILE, source_select

TYPE_ERRORS = "_type_errors"
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
           "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")


@dataclass(frozen=True)
class SourceWindow:
    rows: pd.DataFrame       # the spec's columns, typed, plus TYPE_ERRORS (and _file for a file source)
    outside: pd.DataFrame    # row_id, reason, record: rows no partition can take


class SourceUnreadable(RuntimeError):
    """The source file or table cannot be read at all."""


def _describe(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> dict[str, str]:
    from_clause, params = source_select(spec, files=True)
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {from_clause}", params).fetchall()
    except duckdb.Error as exc:
        where = spec.source.table or spec.source.path
        raise SourceUnreadable(
            f"source {where} cannot be read ({type(exc).__name__}: {exc}); fix or replace it — "
            "nothing was ingested from it"
        ) from exc
    types = {r[0]: r[1] for r in rows}
    missing = [c for c in spec.source_columns if c not in types]
    if missing:
        raise SpecError(
            f"source {spec.source.table or spec.source.path} has no column(s) {missing} named in "
            f"the spec (found {sorted(types)}): rename them in the source or fix the spec"
        )
    return types


def _typed(col: str, source_type: str, target: str) -> tuple[str, str | None]:
    """SQL that casts `col` to the target kind, and SQL naming a failed cast (or None)."""
    if target == "numeric" and not source_type.startswith(NUMERIC):
        cast = f"TRY_CAST({col} AS DOUBLE)"
    elif target == "timestamp" and not source_type.startswith(("TIMESTAMP", "DATE")):
        cast = f"TRY_CAST({col} AS TIMESTAMP)"
    elif target == "timestamp" and source_type in ("TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"):
        # pandas writes nanoseconds: the platform's timestamps are microseconds, as on Spark
        return f"CAST({col} AS TIMESTAMP) AS {col}", None
    elif target == "categorical" and source_type != "VARCHAR":
        return f"CAST({col} AS VARCHAR) AS {col}", None
    else:
        return col, None
    problem = (
        f"CASE WHEN {col} IS NOT NULL AND {cast} IS NULL "
        f"THEN 'type({col}): ' || CAST({col} AS VARCHAR) END"
    )
    return f"{cast} AS {col}", problem


def typed_columns(spec: DatasetSpec, types: dict[str, str], typed=None) -> tuple[list[str], str | None]:  # noqa: ANN001 - an engine's _typed
    """Each source column of the spec cast to its kind by `typed(col, source type, kind)` (this
    module's `_typed` for DuckDB, ingest_spark's for Spark), and the SQL joining their type errors
    (None when no cast can fail)."""
    typed = typed or _typed
    targets = {spec.id_column: "id"}
    if spec.timestamp_column:
        targets[spec.timestamp_column] = "timestamp"
    targets |= {c: "numeric" for c in spec.numeric} | {c: "categorical" for c in spec.categorical}
    exprs, problems = [], []
    for col, target in targets.items():
        expr, problem = typed(col, types[col], target)
        exprs.append(expr)
        if problem:
            problems.append(problem)
    return exprs, (f"nullif(concat_ws('; ', {', '.join(problems)}), '')" if problems else None)


def _select(spec: DatasetSpec, types: dict[str, str]) -> tuple[str, str]:
    exprs, errors = typed_columns(spec, types)
    errors = errors or "NULL::VARCHAR"
    if FILE in types:
        exprs.append(FILE)
    return ", ".join(exprs), errors


def typed_source(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> tuple[str, list]:
    """SQL of the source's rows typed per the spec (plus TYPE_ERRORS and _file), and its parameters."""
    types = _describe(con, spec)
    from_clause, params = source_select(spec, files=True)
    exprs, errors = _select(spec, types)
    return f"SELECT {exprs}, {errors} AS {TYPE_ERRORS} FROM {from_clause} AS src", params


def read_batch(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, where: str, params: list, files: list[str] | None
) -> SourceWindow:
    """The source rows a batch takes, typed per the spec: those of `where` (SQL over the typed
    columns, with its parameters). `files`: the batch's files (their unparseable CSV lines
    are the batch's too), or None for a table or a single file read whole."""
    typed, source_params = typed_source(con, spec)
    rows = con.execute(
        f"SELECT * FROM ({typed}) WHERE {where} ORDER BY {spec.id_column}", [*source_params, *params]
    ).df()
    outside = pd.DataFrame(columns=["row_id", "reason", "record"])
    if spec.source.kind == "csv":
        outside = _csv_rejects(con, files)
    return SourceWindow(rows, outside)


def read_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: datetime, end: datetime
) -> SourceWindow:
    """The window's rows [start, end) typed per the spec, and the rows of no partition."""
    typed, params = typed_source(con, spec)
    ts, rid = spec.timestamp_column, spec.id_column
    rows = con.execute(
        f"SELECT * FROM ({typed}) WHERE {ts} >= ? AND {ts} < ? ORDER BY {ts}, {rid}",
        [*params, start, end],
    ).df()
    first = datetime.combine(spec.source.start_date, datetime.min.time())
    upper = (
        datetime.combine(spec.source.end_date, datetime.min.time())
        if spec.source.end_date
        else datetime.combine(datetime.now().date() + timedelta(days=1), datetime.min.time())
    )
    outside = con.execute(
        f"SELECT CAST({rid} AS VARCHAR) AS row_id, CASE "
        f"WHEN {ts} IS NULL THEN 'timestamp {ts} is missing or not a timestamp' "
        f"WHEN {ts} < ? THEN 'timestamp {ts} before source.start_date' "
        f"ELSE 'timestamp {ts} after the last partition (source.end_date or the future)' END "
        f"|| coalesce('; ' || {TYPE_ERRORS}, '') AS reason, "
        f"to_json(struct_pack({', '.join(spec.source_columns)}))::VARCHAR AS record "
        f"FROM ({typed}) WHERE {ts} IS NULL OR {ts} < ? OR {ts} >= ?",
        [first, *params, first, upper],
    ).df()
    if spec.source.kind == "csv":
        outside = pd.concat([outside, _csv_rejects(con, None)], ignore_index=True)
    return SourceWindow(rows.drop(columns=[FILE], errors="ignore"), outside)


def _csv_rejects(con: duckdb.DuckDBPyConnection, files: list[str] | None) -> pd.DataFrame:
    """CSV lines DuckDB could not parse (bad encoding, missing columns, bad casts); of `files`
    only, when given."""
    only = "WHERE s.file_path IN (SELECT unnest(?::VARCHAR[]))" if files is not None else ""
    several = "'file ' || s.file_path || ' ' || " if files is not None else ""
    return con.execute(
        "SELECT NULL::VARCHAR AS row_id, "
        f"{several}'unparseable CSV line ' || e.line || ': ' || string_agg(DISTINCT e.error_type, ', ') AS reason, "
        "to_json({'file': s.file_path, 'line': e.line, 'csv_line': any_value(e.csv_line)})::VARCHAR AS record "
        f"FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id) {only} "
        "GROUP BY s.file_path, e.line ORDER BY s.file_path, e.line",
        [files] if files is not None else [],
    ).df()
