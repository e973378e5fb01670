"""Ingest one time window from the source into `raw.<table>`; failing rows to quarantine.

The window's previous rows are replaced in one transaction, so a re-run of a partition
replaces it (nothing duplicated) and a crash leaves the previous version in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.quality import Validation, validate
from mlinfra_assets.warehouse.source import source_from

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
    validation: Validation

    @property
    def quarantine_share(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0


def read_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: datetime, end: datetime
) -> pd.DataFrame:
    """The source rows whose timestamp falls in [start, end): the spec's columns only."""
    from_clause, params = source_from(spec)
    cols = ", ".join(spec.source_columns)
    sql = (
        f"SELECT {cols} FROM {from_clause} "
        f"WHERE {spec.timestamp_column} >= ? AND {spec.timestamp_column} < ? "
        f"ORDER BY {spec.timestamp_column}, {spec.id_column}"
    )
    return con.execute(sql, [*params, start, end]).df()


def ingest_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: datetime, end: datetime
) -> IngestResult:
    """Validate the window's rows with the spec's suite and land them: good rows to raw,
    failing rows to raw.quarantine with the expectations they failed."""
    df = read_window(con, spec, start, end)
    validation = validate(spec, df)
    reasons = pd.Series(
        ["; ".join(validation.row_reasons.get(i, [])) or None for i in range(len(df))],
        dtype="object",
    )
    staged = df.assign(_reason=reasons.values)
    ts, rid, table = spec.timestamp_column, spec.id_column, spec.raw_table
    cols = ", ".join(spec.source_columns)
    with transaction(con, _staged=staged):
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} AS SELECT {cols}, "
            f"CAST({ts} AS DATE) AS _partition, now()::TIMESTAMP AS _ingested_at FROM _staged LIMIT 0"
        )
        con.execute(QUARANTINE_DDL)
        con.execute(f"DELETE FROM {table} WHERE {ts} >= ? AND {ts} < ?", [start, end])
        con.execute(
            "DELETE FROM raw.quarantine WHERE source_table = ? AND _partition >= ? AND _partition < ?",
            [table, start.date(), end.date()],
        )
        con.execute(
            f"INSERT INTO {table} SELECT {cols}, CAST({ts} AS DATE), now()::TIMESTAMP "
            "FROM _staged WHERE _reason IS NULL"
        )
        con.execute(
            f"INSERT INTO raw.quarantine SELECT ?, coalesce(CAST({ts} AS DATE), ?::DATE), "
            f"CAST({rid} AS VARCHAR), _reason, to_json(struct_pack({cols})), now()::TIMESTAMP "
            "FROM _staged WHERE _reason IS NOT NULL",
            [table, start.date()],
        )
    quarantined = int(reasons.notna().sum())
    return IngestResult(len(df), len(df) - quarantined, quarantined, validation)
