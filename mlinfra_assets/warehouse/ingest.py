"""Ingest one time window from the source into `raw.<table>`; failing rows to quarantine.

The window's previous rows are replaced in one transaction, so a re-run of a partition
replaces it (nothing duplicated) and a crash leaves the previous version in place.
Every source row ends in exactly one place: `raw.<table>` or `raw.quarantine` (with the
reasons). Rows that belong to no partition are quarantined with `_partition` NULL and
refreshed by every ingest run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.quality import Validation, validate
from mlinfra_assets.warehouse.read import TYPE_ERRORS, read_window

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS raw.quarantine (
    source_table VARCHAR, _partition DATE, row_id VARCHAR, reason VARCHAR,
    record JSON, quarantined_at TIMESTAMP
)
"""


@dataclass(frozen=True)
class IngestResult:
    rows_in: int
    rows_landed: int
    rows_quarantined: int
    rows_outside: int
    validation: Validation

    @property
    def quarantine_share(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0


def _reasons(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, df: pd.DataFrame,
             validation: Validation, start: datetime, end: datetime) -> pd.Series:
    """Per row: type errors, failed expectations, and ids already landed in another partition."""
    dupes: set[str] = set()
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' AND table_name = ?",
        [spec.source.name],
    ).fetchall()[0][0]
    if exists and len(df):
        ts, rid = spec.timestamp_column, spec.id_column
        ids = pd.DataFrame({"id": df[rid].astype(str)})
        con.register("_window_ids", ids)
        try:
            dupes = {r[0] for r in con.execute(
                f"SELECT DISTINCT CAST({rid} AS VARCHAR) FROM {spec.raw_table} "
                f"WHERE CAST({rid} AS VARCHAR) IN (SELECT id FROM _window_ids) "
                f"AND ({ts} < ? OR {ts} >= ?)", [start, end]).fetchall()}
        finally:
            con.unregister("_window_ids")
    out = []
    ids = df[spec.id_column].astype(str)
    for i, (type_errors, row_id) in enumerate(zip(df[TYPE_ERRORS], ids, strict=True)):
        parts = [type_errors] if isinstance(type_errors, str) else []
        parts += validation.row_reasons.get(i, [])
        if row_id in dupes:
            parts.append(f"duplicate id {spec.id_column}: already in {spec.raw_table} (another day)")
        out.append("; ".join(parts) or None)
    return pd.Series(out, dtype="object")


def ingest_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: datetime, end: datetime
) -> IngestResult:
    """Validate the window's rows with the spec's suite and land them: good rows to raw,
    failing rows to raw.quarantine with the expectations they failed."""
    window = read_window(con, spec, start, end)
    df = window.rows
    validation = validate(spec, df.drop(columns=[TYPE_ERRORS]))
    reasons = _reasons(con, spec, df, validation, start, end)
    staged = df.drop(columns=[TYPE_ERRORS]).assign(_reason=reasons.values)
    ts, rid, table = spec.timestamp_column, spec.id_column, spec.raw_table
    cols = ", ".join(spec.source_columns)
    with transaction(con, _staged=staged, _outside=window.outside):
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} AS SELECT {cols}, "
            f"CAST({ts} AS DATE) AS _partition, now()::TIMESTAMP AS _ingested_at FROM _staged LIMIT 0"
        )
        con.execute(QUARANTINE_DDL)
        con.execute(f"DELETE FROM {table} WHERE {ts} >= ? AND {ts} < ?", [start, end])
        con.execute(
            "DELETE FROM raw.quarantine WHERE source_table = ? "
            "AND ((_partition >= ? AND _partition < ?) OR _partition IS NULL)",
            [table, start.date(), end.date()],
        )
        con.execute(
            f"INSERT INTO {table} SELECT {cols}, CAST({ts} AS DATE), now()::TIMESTAMP "
            "FROM _staged WHERE _reason IS NULL"
        )
        con.execute(
            f"INSERT INTO raw.quarantine SELECT ?, CAST({ts} AS DATE), "
            f"CAST({rid} AS VARCHAR), _reason, to_json(struct_pack({cols})), now()::TIMESTAMP "
            "FROM _staged WHERE _reason IS NOT NULL",
            [table],
        )
        con.execute(
            "INSERT INTO raw.quarantine SELECT ?, NULL, row_id, reason, record::JSON, "
            "now()::TIMESTAMP FROM _outside",
            [table],
        )
    quarantined = int(reasons.notna().sum())
    return IngestResult(len(df), len(df) - quarantined, quarantined, len(window.outside), validation)
