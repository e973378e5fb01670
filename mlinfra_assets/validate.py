"""The spec checked in full when the code location loads: the source and its columns, the
gold labels' file or table and columns, the LF module (it imports, and its LFs vote valid
classes on a sample of rows). Each error names the setting and what to do."""

from __future__ import annotations

from pathlib import Path

import duckdb

from mlinfra_assets.spec import DatasetSpec, SpecError

SAMPLE_ROWS = 200


def _columns(from_sql: str, params: list, con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {from_sql}", params).fetchall()}


def check_gold(spec: DatasetSpec, warehouse_path: str) -> None:
    """The gold labels can be found where the spec says (their values are checked on landing)."""
    g = spec.gold
    if g is None:
        return
    con = duckdb.connect()
    try:
        if g.path:
            path = spec.resolve(g.path)
            if not Path(path).exists():
                raise SpecError(f"gold.path {path} does not exist: fix gold.path (relative to the spec) or drop it")
            reader = "read_parquet(?)" if Path(path).suffix.lower() in (".parquet", ".pq") else "read_csv(?)"
            try:
                columns = _columns(reader, [path], con)
            except duckdb.Error as exc:
                raise SpecError(f"gold.path {path} cannot be read ({str(exc).splitlines()[0]})") from exc
            where, id_col = f"gold.path {path}", g.id_column or spec.id_column
        elif g.in_source:
            if spec.source.kind == "duckdb_table":
                return  # the source check names the table's columns; the gold asset reads it
            from mlinfra_assets.warehouse.source import source_from

            from_sql, params = source_from(spec)
            columns, where, id_col = _columns(from_sql, params, con), f"source {spec.source.path}", None
        else:
            return  # a warehouse table: checked when the gold asset lands it (the demo makes it)
    finally:
        con.close()
    missing = [c for c in (g.column, id_col) if c and c not in columns]
    if missing:
        raise SpecError(
            f"{where} has no column(s) {missing} (gold.column / gold.id_column); it has {sorted(columns)}: "
            "fix the gold section of the spec"
        )
    if g.path and spec.source.kind != "duckdb_table":
        _check_join(spec, reader, path, id_col)


def _check_join(spec: DatasetSpec, reader: str, path: str, id_col: str) -> None:
    """A gold file must share ids with the source file (the whole check is one DuckDB scan)."""
    from mlinfra_assets.warehouse.source import source_select

    from_sql, params = source_select(spec)
    con = duckdb.connect()
    try:
        joined = con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT CAST({id_col} AS VARCHAR) AS i FROM {reader}) AS g "
            f"SEMI JOIN (SELECT CAST({spec.id_column} AS VARCHAR) AS i FROM {from_sql} AS s) AS s USING (i)",
            [path, *params],
        ).fetchall()[0][0]
    except duckdb.Error:
        return  # the ingest and gold steps name what cannot be read
    finally:
        con.close()
    if joined == 0:
        raise SpecError(
            f"gold.path {path} does not join on any id: none of its {id_col} values is a {spec.id_column} "
            "of the source; set gold.id_column to the file's id column, or fix the ids"
        )


def check_lf_module(spec: DatasetSpec, warehouse_path: str) -> None:
    """The LF module imports and its LFs vote valid classes on a sample of the source's rows."""
    from mlinfra_assets.labeling import lfs

    if spec.source.kind == "duckdb_table" and not Path(warehouse_path).exists():
        lfs.load_lfs(spec)  # the demo's table does not exist yet: the import is all we can check
        return
    from mlinfra_assets.warehouse.source import source_select

    from_sql, params = source_select(spec)
    cols = ", ".join(spec.source_columns)
    try:
        con = (duckdb.connect(warehouse_path, read_only=True) if spec.source.kind == "duckdb_table"
               else duckdb.connect())
        try:
            sample = con.execute(f"SELECT {cols} FROM {from_sql} AS s LIMIT {SAMPLE_ROWS}", params).df()
        finally:
            con.close()
    except duckdb.Error:
        lfs.load_lfs(spec)  # a source missing or locked by a writer: the source check or ingest says so
        return
    lfs.check_lfs(spec, sample)


def check_spec(spec: DatasetSpec, warehouse_path: str) -> None:
    """Everything that can be checked before a run; raises SpecError (or the LF module's error)."""
    from mlinfra_assets.warehouse.source import check_source

    check_source(spec, warehouse_path)
    check_gold(spec, warehouse_path)
    check_lf_module(spec, warehouse_path)
