"""Where the dataset's rows come from: a warehouse table, Parquet or CSV files."""

from __future__ import annotations

import glob
from pathlib import Path

import duckdb

from mlinfra_assets.spec import DatasetSpec, SpecError

FILE = "_file"  # the file a row was read from (file sources read with `files=True`)


def source_path(spec: DatasetSpec) -> str:
    """`source.path` resolved against the spec file's folder (a glob stays a glob)."""
    return spec.resolve(spec.source.path)


def is_glob(spec: DatasetSpec) -> bool:
    """The source is a file pattern (`*`, `?`, `[`): each new matching file is a batch."""
    return spec.source.kind != "duckdb_table" and glob.has_magic(spec.source.path)


def source_files(spec: DatasetSpec) -> list[str]:
    """The files matching `source.path`, sorted (empty for a table source)."""
    if spec.source.kind == "duckdb_table":
        return []
    return sorted(glob.glob(source_path(spec)))


def source_from(spec: DatasetSpec, files: bool = False) -> tuple[str, list[str]]:
    """The FROM item of the source and its bound parameters; with `files`, a file source also
    exposes the column `_file` (the path each row was read from)."""
    if spec.source.kind == "duckdb_table":
        return spec.source.table, []
    name = f", filename = '{FILE}'" if files else ""
    if spec.source.kind == "parquet":
        return f"read_parquet(?{name})", [source_path(spec)]
    # unparseable lines are kept aside (reject_errors) rather than failing the whole file
    return f"read_csv(?, store_rejects = true{name})", [source_path(spec)]


def source_select(spec: DatasetSpec, files: bool = False) -> tuple[str, list[str]]:
    """A parenthesized subquery over the source (use it as `FROM <sql> AS s`) and its parameters:
    every column of the source (those the spec does not name too, e.g. the target), and the
    id column `spec.id_column`, generated when the source has none (`spec.id_generated`).

    The generated `_row_id` is the md5 of the row's JSON (every source column) and the row's
    occurrence among identical rows of its file: stable across re-reads of the same data, and
    identical rows (common) still get distinct ids. Identical rows are interchangeable, so
    which copy gets which occurrence number does not matter. With `files` (file sources),
    the column `_file` names the file each row came from.
    """
    file_source = spec.source.kind != "duckdb_table"
    from_item, params = source_from(spec, files=file_source and (files or spec.id_generated))
    if not spec.id_generated:
        return f"(SELECT * FROM {from_item})", params
    row = f"struct_pack(*COLUMNS(* EXCLUDE ({FILE})))" if file_source else "struct_pack(*COLUMNS(*))"
    by_file = f"{FILE}, " if file_source else ""
    dropped = "_row_hash" if files or not file_source else f"_row_hash, {FILE}"
    sql = (
        f"(SELECT * EXCLUDE ({dropped}), _row_hash || '-' || CAST(row_number() OVER "
        f"(PARTITION BY {by_file}_row_hash) AS VARCHAR) AS {spec.id_column} "
        f"FROM (SELECT *, md5(CAST(to_json({row}) AS VARCHAR)) AS _row_hash FROM {from_item}))"
    )
    return sql, params


def check_source(spec: DatasetSpec, warehouse_path: str) -> None:
    """Fail fast, naming the table or column, when the spec's source does not match the data.

    The demo's table is skipped until it is generated; a warehouse locked by a running
    step is skipped too (the ingest step re-checks it).
    """
    if spec.source.kind == "duckdb_table":
        if not Path(warehouse_path).exists():
            if spec.demo is None:
                raise SpecError(
                    f"source.table {spec.source.table}: the warehouse {warehouse_path} does not exist"
                )
            return
        try:
            con = duckdb.connect(warehouse_path, read_only=True)
        except duckdb.IOException:
            return
        schema, table = spec.source.table.split(".")
        try:
            rows = con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                [schema, table],
            ).fetchall()
        finally:
            con.close()
        if not rows:
            if spec.demo is not None:
                return
            raise SpecError(
                f"source.table {spec.source.table} does not exist in {warehouse_path}: "
                "create it or fix source.table in the spec"
            )
        columns = {r[0] for r in rows} | ({spec.id_column} if spec.id_generated else set())
        where = f"source.table {spec.source.table}"
    else:
        path = source_path(spec)
        files = glob.glob(path)
        if not files:
            raise SpecError(f"source.path {path} matches no file: fix source.path in the spec")
        if all(Path(f).stat().st_size == 0 for f in files):
            raise SpecError(f"source.path {path} is empty (0 bytes): the export did not complete?")
        from_clause, params = source_select(spec)
        con = duckdb.connect()
        try:
            columns = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {from_clause}", params).fetchall()}
        except duckdb.Error as exc:
            raise SpecError(
                f"source.path {path} cannot be read as {spec.source.kind} ({exc}): fix or replace the file"
            ) from exc
        finally:
            con.close()
        where = f"source.path {path}"
    missing = [c for c in spec.source_columns if c not in columns]
    if missing:
        raise SpecError(
            f"{where} has no column(s) {missing} named in the spec; it has {sorted(columns)}"
        )
