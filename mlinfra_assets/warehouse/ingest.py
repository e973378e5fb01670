"""Ingest a window of partitions from the source into `raw.<table>`; failing rows to quarantine.

A window is a range of time partitions (a timestamp column) or of batches (none). The
window's previous rows are replaced in one transaction, so a re-run of a partition replaces
it (nothing duplicated) and a crash leaves the previous version in place. A window of time
partitions holding more than `source.ingest_chunk_rows` source rows is ingested in runs of
whole partitions of about that many rows, one transaction each (memory stays that of one run:
a 10M-row backfill never becomes one frame); an id repeated across runs lands once, the later
row is quarantined as a duplicate, as when the partitions are ingested one by one. Every source row
ends in exactly one place: `raw.<table>` or `raw.quarantine` (with the reasons). Rows that
belong to no time partition are quarantined with `_partition` NULL and refreshed by every
ingest run.

Batches: `raw.batches` records which file(s) each batch holds. A new batch of a file glob
takes the first file (by name) that no batch holds yet; a batch of a table or a single file
takes the source's rows whose id no other batch holds (its own rows stay its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.partitions import Window, partition_type
from mlinfra_assets.warehouse.quality import ExpectationOutcome, Validation, validate
from mlinfra_assets.warehouse.read import (
    TYPE_ERRORS,
    SourceWindow,
    read_batch,
    read_window,
    typed_source,
)
from mlinfra_assets.warehouse.source import FILE, is_glob, source_files

MANIFEST = "raw.batches"
MANIFEST_DDL = (
    f"CREATE TABLE IF NOT EXISTS {MANIFEST} (source_table VARCHAR, batch INTEGER, "
    "partition_key VARCHAR, file VARCHAR, rows BIGINT, ingested_at TIMESTAMP)"
)


def quarantine_ddl(spec: DatasetSpec) -> str:
    return (
        "CREATE TABLE IF NOT EXISTS raw.quarantine (source_table VARCHAR, "
        f"_partition {partition_type(spec)}, row_id VARCHAR, reason VARCHAR, record JSON, "
        "quarantined_at TIMESTAMP)"
    )


@dataclass(frozen=True)
class IngestResult:
    rows_in: int
    rows_landed: int
    rows_quarantined: int
    rows_outside: int
    validation: Validation
    # batches only: batch, partition_key, file, rows (one line per file of each batch)
    batches: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def quarantine_share(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0


def _exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchall()[0][0])


def manifest(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> pd.DataFrame:
    """`batch, partition_key, file, rows` of the batches ingested so far (empty when none)."""
    if not _exists(con, "raw", "batches"):
        return pd.DataFrame(columns=["batch", "partition_key", "file", "rows"])
    return con.execute(
        f"SELECT batch, partition_key, file, rows FROM {MANIFEST} WHERE source_table = ? ORDER BY batch, file",
        [spec.raw_table],
    ).df()


def _reasons(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, df: pd.DataFrame,
             validation: Validation, window: Window) -> pd.Series:
    """Per row: type errors, failed expectations, and ids already landed in another partition."""
    dupes: set[str] = set()
    if _exists(con, "raw", spec.source.name) and len(df):
        rid = spec.id_column
        ids = pd.DataFrame({"id": df[rid].astype(str)})
        con.register("_window_ids", ids)
        try:
            dupes = {r[0] for r in con.execute(
                f"SELECT DISTINCT CAST({rid} AS VARCHAR) FROM {spec.raw_table} "
                f"WHERE CAST({rid} AS VARCHAR) IN (SELECT id FROM _window_ids) "
                "AND (_partition < ? OR _partition >= ?)", [window.start, window.end]).fetchall()}
        finally:
            con.unregister("_window_ids")
    out = []
    ids = df[spec.id_column].astype(str)
    other = "another batch" if not spec.has_timestamp else "another partition"
    earlier = pd.Series(False, index=df.index)
    if not spec.has_timestamp and len(df):  # an id of an earlier batch of the window: that one keeps it
        first = df.assign(_id=ids).groupby("_id")["_partition"].transform("min")
        earlier = df["_partition"] > first
    for i, (type_errors, row_id) in enumerate(zip(df[TYPE_ERRORS], ids, strict=True)):
        parts = [type_errors] if isinstance(type_errors, str) else []
        parts += validation.row_reasons.get(i, [])
        if row_id in dupes or earlier.iloc[i]:
            parts.append(f"duplicate id {spec.id_column}: already in {spec.raw_table} ({other})")
        out.append("; ".join(parts) or None)
    return pd.Series(out, dtype="object")


def _time_rows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window) -> SourceWindow:
    """The window's rows, each with `_partition` = the start of its time partition."""
    start = pd.Timestamp(window.start).to_pydatetime()
    end = pd.Timestamp(window.end).to_pydatetime()
    read = read_window(con, spec, start, end)
    rows = read.rows
    starts = pd.to_datetime(pd.Series(window.starts)).to_numpy()
    ts = pd.to_datetime(rows[spec.timestamp_column]).to_numpy()
    index = np.clip(np.searchsorted(starts, ts, side="right") - 1, 0, len(starts) - 1)
    rows = rows.assign(_partition=starts[index])
    return SourceWindow(rows, read.outside.assign(_partition=None))


def plan_batches(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window) -> dict[int, list[str] | None]:
    """Which files each batch of the window holds (None: a table or single file, read whole)."""
    if not is_glob(spec):
        return {n: None for n in window.starts}
    recorded = manifest(con, spec)
    held = {int(b): list(g["file"]) for b, g in recorded.groupby("batch")}
    taken = set(recorded["file"])
    free = [f for f in source_files(spec) if f not in taken]
    plan = {}
    for n in window.starts:
        if n in held:
            plan[n] = held[n]
        else:
            plan[n] = [free.pop(0)] if free else []
    return plan


def _batch_rows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window,
                plan: dict[int, list[str] | None]) -> SourceWindow:
    """The window's batches' rows, each with `_partition` = its batch number."""
    rid = spec.id_column
    if is_glob(spec):
        files = [f for fs in plan.values() for f in fs]
        read = read_batch(con, spec, f"{FILE} IN (SELECT unnest(?::VARCHAR[]))", [files], files)
        batch_of = {f: n for n, fs in plan.items() for f in fs}
        rows = read.rows.assign(_partition=read.rows[FILE].map(batch_of))
        outside = read.outside.assign(
            _partition=[batch_of.get(_record_file(r)) for r in read.outside["record"]]
        )
        return SourceWindow(rows.drop(columns=[FILE]), outside)
    # a table or a single file: the rows no other batch holds; rows new to the source go to
    # the newest batch of the window
    others = []
    for schema, name, column in (("raw", spec.source.name, rid), ("raw", "quarantine", "row_id")):
        if _exists(con, schema, name):
            source_filter = " AND source_table = ?" if name == "quarantine" else ""
            others.append((f"SELECT CAST({column} AS VARCHAR) AS i, _partition FROM {schema}.{name} "
                           f"WHERE {column} IS NOT NULL{source_filter}", [spec.raw_table] if source_filter else []))
    if others:
        known = con.execute(
            " UNION ALL ".join(sql for sql, _ in others), [p for _, ps in others for p in ps]
        ).df()
    else:
        known = pd.DataFrame({"i": pd.Series([], dtype="object"), "_partition": pd.Series([], dtype="int64")})
    inside = known["_partition"].between(window.start, window.end - 1)
    elsewhere = sorted(set(known.loc[~inside, "i"]))
    read = read_batch(con, spec, f"CAST({rid} AS VARCHAR) NOT IN (SELECT unnest(?::VARCHAR[]))",
                      [elsewhere], None)
    previous = dict(zip(known.loc[inside, "i"], known.loc[inside, "_partition"], strict=True))
    newest = max(window.starts)
    batch = [int(previous.get(i, newest)) for i in read.rows[rid].astype(str)]
    rows = read.rows.drop(columns=[FILE], errors="ignore").assign(_partition=batch)
    return SourceWindow(rows, read.outside.assign(_partition=newest))


def _record_file(record: str) -> str | None:
    import json

    try:
        return json.loads(record).get("file")
    except (TypeError, ValueError, AttributeError):
        return None


def ingest_window(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window) -> IngestResult:
    """Validate the window's rows with the spec's suite and land them: good rows to raw,
    failing rows to raw.quarantine with the expectations they failed; in runs of whole
    partitions of about `source.ingest_chunk_rows` rows (`chunks`)."""
    from mlinfra_assets import lake

    lake.refuse_other_engine(con, "duckdb", [spec.raw_table, "raw.quarantine"])
    parts = chunks(con, spec, window)
    results = [_ingest(con, spec, part) for part in parts]
    return results[0] if len(results) == 1 else _merged(results)


def chunks(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window) -> list[Window]:
    """The window as runs of consecutive partitions of about `source.ingest_chunk_rows` source
    rows each (counted in SQL); the window itself when it fits, or without a timestamp."""
    from mlinfra_assets.warehouse.partitions import window_for

    if not spec.has_timestamp or len(window.keys) == 1:
        return [window]
    counts = _partition_counts(con, spec, window)
    limit = spec.source.ingest_chunk_rows
    if sum(counts) <= limit:
        return [window]
    out, keys, rows = [], [], 0
    for key, n in zip(window.keys, counts, strict=True):
        if keys and rows + n > limit:
            out.append(window_for(spec, keys))
            keys, rows = [], 0
        keys.append(key)
        rows += n
    out.append(window_for(spec, keys))
    return out


def _partition_counts(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window) -> list[int]:
    """Source rows of each partition of the window, in the window's order (one SQL count)."""
    typed, params = typed_source(con, spec)
    ts = spec.timestamp_column
    bounds = pd.DataFrame({"i": range(len(window.keys)),
                           "s": pd.to_datetime(pd.Series(window.starts)).dt.tz_localize(None),
                           "e": pd.to_datetime(pd.Series(window.ends)).dt.tz_localize(None)})
    con.register("_ingest_bounds", bounds)
    try:
        found = dict(con.execute(
            f"SELECT b.i, count(*) FROM (SELECT {ts} AS t FROM ({typed}) WHERE {ts} >= ? AND {ts} < ?) AS r "
            "JOIN _ingest_bounds AS b ON r.t >= b.s AND r.t < b.e GROUP BY b.i",
            [*params, bounds["s"].iloc[0].to_pydatetime(), bounds["e"].iloc[-1].to_pydatetime()],
        ).fetchall())
    finally:
        con.unregister("_ingest_bounds")
    return [int(found.get(i, 0)) for i in range(len(window.keys))]


def _merged(results: list[IngestResult]) -> IngestResult:
    """One result for a window ingested in runs: counts summed, each expectation failed where
    it failed in a run (its unexpected rows summed); the rows of no partition are those of the
    last run (every run reads and replaces the same ones)."""
    outcomes: dict[tuple[str, str | None], ExpectationOutcome] = {}
    for result in results:
        for o in result.validation.outcomes:
            was = outcomes.get((o.expectation, o.column))
            outcomes[(o.expectation, o.column)] = o if was is None else ExpectationOutcome(
                o.expectation, o.column, was.success and o.success, was.unexpected_count + o.unexpected_count)
    validation = Validation(rows=sum(r.validation.rows for r in results), outcomes=list(outcomes.values()))
    return IngestResult(sum(r.rows_in for r in results), sum(r.rows_landed for r in results),
                        sum(r.rows_quarantined for r in results), results[-1].rows_outside, validation)


def _ingest(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window) -> IngestResult:
    """One run of `ingest_window`: the window's rows in one frame and one transaction."""
    plan = None if spec.has_timestamp else plan_batches(con, spec, window)
    read = _time_rows(con, spec, window) if plan is None else _batch_rows(con, spec, window, plan)
    df = read.rows
    checked = df.drop(columns=[TYPE_ERRORS, "_partition"])
    if plan is not None and len(df):  # ids must be unique within a batch; across batches, see _reasons
        rid = spec.id_column
        checked[rid] = checked[rid].where(
            checked[rid].isna(), df["_partition"].astype(str) + ":" + checked[rid].astype(str)
        )
    validation = validate(spec, checked)
    reasons = _reasons(con, spec, df, validation, window)
    staged = df.drop(columns=[TYPE_ERRORS]).assign(_reason=reasons.values)
    rid, table, ptype = spec.id_column, spec.raw_table, partition_type(spec)
    cols = ", ".join(spec.source_columns)
    part = f"CAST(_partition AS {ptype})"
    outside = read.outside.assign(_partition=read.outside["_partition"].astype("object"))
    batches = _batches_table(spec, plan, staged) if plan is not None else pd.DataFrame()
    frames = {"_staged": staged, "_outside": outside} | ({"_batches": batches} if plan is not None else {})
    with transaction(con, **frames):
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} AS SELECT {cols}, "
            f"{part} AS _partition, now()::TIMESTAMP AS _ingested_at FROM _staged LIMIT 0"
        )
        con.execute(quarantine_ddl(spec))
        con.execute(f"DELETE FROM {table} WHERE _partition >= ? AND _partition < ?", [window.start, window.end])
        con.execute(
            "DELETE FROM raw.quarantine WHERE source_table = ? "
            "AND ((_partition >= ? AND _partition < ?) OR _partition IS NULL)",
            [table, window.start, window.end],
        )
        con.execute(
            f"INSERT INTO {table} SELECT {cols}, {part}, now()::TIMESTAMP "
            "FROM _staged WHERE _reason IS NULL"
        )
        con.execute(
            f"INSERT INTO raw.quarantine SELECT ?, {part}, "
            f"CAST({rid} AS VARCHAR), _reason, to_json(struct_pack({cols})), now()::TIMESTAMP "
            "FROM _staged WHERE _reason IS NOT NULL",
            [table],
        )
        con.execute(
            f"INSERT INTO raw.quarantine SELECT ?, CAST(_partition AS {ptype}), row_id, reason, "
            "record::JSON, now()::TIMESTAMP FROM _outside",
            [table],
        )
        if plan is not None:
            con.execute(MANIFEST_DDL)
            con.execute(
                f"DELETE FROM {MANIFEST} WHERE source_table = ? AND batch >= ? AND batch < ?",
                [table, window.start, window.end],
            )
            con.execute(
                f"INSERT INTO {MANIFEST} SELECT ?, batch, partition_key, file, rows, now()::TIMESTAMP "
                "FROM _batches",
                [table],
            )
    quarantined = int(reasons.notna().sum())
    return IngestResult(len(df), len(df) - quarantined, quarantined, len(read.outside), validation, batches)


def _batches_table(spec: DatasetSpec, plan: dict[int, list[str] | None], staged: pd.DataFrame) -> pd.DataFrame:
    """The manifest lines of the window: one per file of each batch (the source's name for a
    table or single file), with the rows read for the batch."""
    from mlinfra_assets.warehouse.partitions import batch_key

    counts = staged.groupby("_partition").size()
    whole = spec.source.table or spec.source.path
    lines = [
        {"batch": n, "partition_key": batch_key(n), "file": f, "rows": int(counts.get(n, 0))}
        for n, files in plan.items()
        for f in (files if files is not None else [whole])
    ]
    return pd.DataFrame(lines, columns=["batch", "partition_key", "file", "rows"]).astype(
        {"batch": "int64", "partition_key": "object", "file": "object", "rows": "int64"}
    )
