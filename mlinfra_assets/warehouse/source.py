"""Where the dataset's rows come from: a warehouse table, Parquet or CSV files."""

from __future__ import annotations

import glob
from pathlib import Path

import dagster as dg
import duckdb

from mlinfra_assets.spec import DatasetSpec, SpecError


def source_from(spec: DatasetSpec) -> tuple[str, list[str]]:
    """The FROM clause of the source and its bound parameters."""
    if spec.source.kind == "duckdb_table":
        return spec.source.table, []
    if spec.source.kind == "parquet":
        return "read_parquet(?)", [spec.source.path]
    # unparseable lines are kept aside (reject_errors) rather than failing the whole file
    return "read_csv(?, store_rejects = true)", [spec.source.path]


def partitions_for(spec: DatasetSpec) -> dg.DailyPartitionsDefinition:
    """Daily partitions over the spec's timestamp column."""
    return dg.DailyPartitionsDefinition(
        start_date=spec.source.start_date.isoformat(),
        end_date=spec.source.end_date.isoformat() if spec.source.end_date else None,
    )


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
        columns = {r[0] for r in rows}
        where = f"source.table {spec.source.table}"
    else:
        path = spec.source.path
        files = glob.glob(path)
        if not files:
            raise SpecError(f"source.path {path} matches no file: fix source.path in the spec")
        if all(Path(f).stat().st_size == 0 for f in files):
            raise SpecError(f"source.path {path} is empty (0 bytes): the export did not complete?")
        from_clause, params = source_from(spec)
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
