"""Ingest a window of time partitions on Spark (`warehouse.engine: spark`): the same rows land
and the same rows are quarantined, with the same reasons, as `ingest.ingest_window` on DuckDB.

One Spark job reads the source (Parquet files; a warehouse table is first copied out to
Parquet for the window), types its columns as the spec says, assigns each row its partition,
and gives every row its reasons: type errors, the spec's Great Expectations suite as Spark SQL
(each expectation of `quality.build_suite`, in its order, with GX's pandas semantics: NaN
counts as missing, missing values are not checked for range or set) and ids already landed in
another partition. Good rows go to `raw.<table>` and the others to `raw.quarantine`, both
Parquet in the lake, committed together (`lake.commit`). Rows of no partition are quarantined
with `_partition` NULL and refreshed by every run, as on DuckDB.

The suite is cross-checked with Great Expectations itself on a sample of the window (every
row of the sampled ids, so uniqueness is judged on whole groups): a disagreement fails the
raw asset's check, naming the row.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mlinfra_assets import lake
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.ingest import IngestResult
from mlinfra_assets.warehouse.partitions import Window
from mlinfra_assets.warehouse.quality import ExpectationOutcome, Validation, build_suite, validate
from mlinfra_assets.warehouse.read import TYPE_ERRORS, SourceUnreadable, typed_columns
from mlinfra_assets.warehouse.source import source_files, source_path

QUARANTINE = "raw.quarantine"
OUTSIDE_KEY = "__outside__"  # the lake partition of the rows that belong to no partition
QUARANTINE_COLUMNS = ["source_table", "_partition", "row_id", "reason", "record", "quarantined_at"]
SAMPLE_ROWS = 2000  # rows of the window cross-checked with Great Expectations
COPIES = 3  # rows of one repeated id in that sample, at most
NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")
FLOAT_TYPES = ("float", "double")
EXPECT = "_expect"  # the reasons from the suite alone (what the GX cross-check compares)


@dataclass
class SparkIngest:
    """What the Spark side of an ingest did besides its result."""

    disagreements: list[str] = field(default_factory=list)  # rows where GX and Spark's checks differ
    sampled_rows: int = 0  # rows cross-checked with Great Expectations
    seconds: dict[str, float] = field(default_factory=dict)  # per phase

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started


def _lit(value: object, hourly: bool) -> str:
    """A partition bound as a Spark SQL literal of `_partition`'s type."""
    if isinstance(value, datetime) or hourly:
        return f"TIMESTAMP_NTZ '{pd.Timestamp(value).strftime('%Y-%m-%d %H:%M:%S')}'"
    return f"DATE '{pd.Timestamp(value).date().isoformat()}'"


def _ts(value: datetime | date) -> str:
    return f"TIMESTAMP_NTZ '{pd.Timestamp(value).strftime('%Y-%m-%d %H:%M:%S')}'"


def _bounds(spec: DatasetSpec) -> tuple[datetime, datetime]:
    """The first partition's start and the end of the last (as `read.read_window`)."""
    first = datetime.combine(spec.source.start_date, datetime.min.time())
    end = spec.source.end_date or (datetime.now().date() + timedelta(days=1))
    return first, datetime.combine(end, datetime.min.time())


def _source(spark: Any, con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window, stage: Path) -> Any:  # noqa: ANN401
    """The source rows a window needs (its own and those of no partition) as a Spark DataFrame.
    A warehouse table is copied out to Parquet first (only those rows), Parquet files are read
    where they are."""
    if spec.source.kind == "parquet":
        return _read_parquet(spark, source_path(spec), source_files(spec))
    ts = spec.timestamp_column
    first, upper = _bounds(spec)
    start, end = (pd.Timestamp(v).to_pydatetime() for v in (window.start, window.end))
    out = stage / "source.parquet"  # Spark skips files named _*
    t = f"TRY_CAST({ts} AS TIMESTAMP)"  # a text column's unreadable values: quarantined on Spark's side
    con.execute(
        f"COPY (SELECT * FROM {spec.source.table} WHERE ({t} >= ? AND {t} < ?) OR {t} IS NULL "
        f"OR {t} < ? OR {t} >= ?) TO '{out}' (FORMAT parquet)", [start, end, first, upper])
    return _read_parquet(spark, str(out), [str(out)])


def _read_parquet(spark: Any, path: str, files: list[str]) -> Any:  # noqa: ANN401
    """Parquet `files` (matched by `path`) as a Spark DataFrame. Nanosecond timestamps (pandas'
    default, DuckDB's TIMESTAMP_NS) are a Parquet type Spark reads only as their count
    (spark.sql.legacy.parquet.nanosAsLong, a platform default): they become timestamps here."""
    nanos = nanosecond_columns(files, path)
    source = spark.read.parquet(path)
    if not nanos:
        return source
    return source.selectExpr(*[
        f"CAST(timestamp_micros({c} DIV 1000) AS TIMESTAMP_NTZ) AS {c}" if c in nanos else c
        for c in source.columns])


def nanosecond_columns(files: list[str], where: str = "") -> set[str]:
    """The columns any of `files` stores as nanosecond timestamps (read from their footers);
    a file that is no Parquet is a SourceUnreadable naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    found = set()
    for file in files:
        try:
            schema = pq.read_schema(file)
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(where or file, f": {file}: {exc}") from exc
        for column in schema:
            if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
                found.add(column.name)
    return found


def _typed(col: str, source_type: str, target: str) -> tuple[str, str | None]:
    """Spark SQL casting `col` to the spec's kind, and SQL naming a failed cast (as read._typed)."""
    if target == "numeric" and not source_type.startswith(NUMERIC_TYPES):
        cast = f"try_cast({col} AS DOUBLE)"
    elif target == "timestamp" and not source_type.startswith(("timestamp", "date")):
        cast = f"try_cast({col} AS TIMESTAMP_NTZ)"
    elif target == "timestamp" and source_type == "timestamp":
        return f"CAST({col} AS TIMESTAMP_NTZ) AS {col}", None
    elif target == "categorical" and source_type != "string":
        return f"CAST({col} AS STRING) AS {col}", None
    else:
        return col, None
    problem = f"CASE WHEN {col} IS NOT NULL AND {cast} IS NULL THEN concat('type({col}): ', CAST({col} AS STRING)) END"
    return f"{cast} AS {col}", problem


def _typed_select(spec: DatasetSpec, types: dict[str, str]) -> str:
    missing = [c for c in spec.source_columns if c not in types]
    if missing:
        from mlinfra_assets.spec import SpecError

        raise SpecError(
            f"source {spec.source.table or spec.source.path} has no column(s) {missing} named in the spec "
            f"(found {sorted(types)}): rename them in the source or fix the spec"
        )
    exprs, errors = typed_columns(spec, types, _typed)
    errors = errors or "CAST(NULL AS STRING)"
    return f"SELECT {', '.join(exprs)}, {errors} AS {TYPE_ERRORS} FROM _mlinfra_source"


def _missing(col: str, spark_type: str) -> str:
    """GX's (pandas') missing value: NULL, and NaN for floating columns."""
    return f"({col} IS NULL OR isnan({col}))" if spark_type in FLOAT_TYPES else f"{col} IS NULL"


def suite_expectations(spec: DatasetSpec) -> list[tuple[str, dict]]:
    """The spec's suite (`quality.build_suite`) as (expectation type, kwargs), in its order."""
    import great_expectations as gx

    gx.get_context(mode="ephemeral")  # GX builds a suite only inside a context
    return [(e.expectation_type, dict(e.configuration.kwargs)) for e in build_suite(spec).expectations]


def expectation_flags(spec: DatasetSpec, types: dict[str, str]) -> list[tuple[ExpectationOutcome, str | None]]:
    """Each expectation of the spec's suite, in its order, with a Spark SQL predicate that is true
    on the rows GX would list as unexpected (None: a table-level expectation, met by the typed read)."""
    out = []
    for kind, kwargs in suite_expectations(spec):
        col = kwargs.get("column")
        outcome = ExpectationOutcome(kind, col, True, 0)
        kind_of = types.get(col, "")
        present = f"NOT {_missing(col, kind_of)}"
        if kind == "expect_column_to_exist":
            out.append((outcome, None))
        elif kind == "expect_column_values_to_not_be_null":
            out.append((outcome, _missing(col, kind_of)))
        elif kind == "expect_column_values_to_be_unique":
            out.append((outcome, f"({present} AND count(*) OVER (PARTITION BY {col}) > 1)"))
        elif kind == "expect_column_values_to_be_between":
            low, high = (repr(float(kwargs[k])) for k in ("min_value", "max_value"))
            out.append((outcome, f"({present} AND ({col} < CAST('{low}' AS DOUBLE) OR {col} > CAST('{high}' AS DOUBLE)))"))
        elif kind == "expect_column_values_to_be_in_set":
            values = ", ".join("'" + str(v).replace("'", "''") + "'" for v in kwargs["value_set"])
            out.append((outcome, f"({present} AND {col} NOT IN ({values}))"))
        else:
            # quality.build_suite gained an expectation this module has no predicate for
            raise ValueError(f"the spec's suite has {kind}({col}), which the Spark engine cannot check: "
                             "use warehouse.engine duckdb, or add its predicate to ingest_spark.expectation_flags")
    return out


def ingest_window_spark(spark: Any, con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window,  # noqa: ANN401
                        root: Path) -> tuple[IngestResult, SparkIngest]:
    """Ingest `window` on Spark into the lake and commit raw and quarantine in the warehouse's
    manifest; returns the result and what the Spark side did (the GX cross-check, seconds)."""
    try:
        return _ingest(spark, con, spec, window, root)
    except Exception as exc:
        unreadable = _unreadable_source(spec, exc, root)
        if unreadable is None:
            raise
        raise unreadable from exc


def _unreadable_source(spec: DatasetSpec, exc: Exception, root: Path | None = None) -> SourceUnreadable | None:
    """The error of a source file Spark cannot read (not Parquet, a broken footer), naming the
    source; None for any other error, and for a file of the lake under `root`."""
    text = str(exc)
    markers = ("is not a Parquet file", "Could not read footer", "CANNOT_READ_FILE_FOOTER",
               "FAILED_READ_FILE", "UNABLE_TO_INFER_SCHEMA")
    if type(exc).__module__.split(".")[0] not in ("pyspark", "py4j") or not any(m in text for m in markers):
        return None
    where = spec.source.path or spec.source.table
    lines = [line.strip() for line in text.splitlines()]
    detail = next((line for m in markers for line in lines if m in line), text)  # the file's own line first
    if root is not None and str(root) in detail:  # the lake's own file (removed or spoiled by hand)
        return None
    return _unreadable(where, f" by Spark ({detail.split('RuntimeException: ')[-1][:300]})")


def _unreadable(where: str, detail: str) -> SourceUnreadable:
    return SourceUnreadable(f"source {where} cannot be read{detail}; fix or replace the file — nothing "
                            "was ingested from this window")


def _ingest(spark: Any, con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window,  # noqa: ANN401
            root: Path) -> tuple[IngestResult, SparkIngest]:
    run = SparkIngest()
    lake.refuse_other_engine(con, "spark", [spec.raw_table, QUARANTINE])
    stage = lake.new_stage(root)
    try:
        # "read": the source's schema (a warehouse table: its copy to Parquet); Spark reads the
        # rows themselves in the "check" phase's first job
        with run.timed("read"):
            source = _source(spark, con, spec, window, stage)
            types = dict(source.dtypes)
        source.createOrReplaceTempView("_mlinfra_source")
        typed = spark.sql(_typed_select(spec, types))
        typed_types = dict(typed.dtypes)
        typed.createOrReplaceTempView("_mlinfra_typed")
        ts, rid, table = spec.timestamp_column, spec.id_column, spec.raw_table
        hourly = spec.source.cadence == "hourly"
        values = ", ".join(
            f"({_ts(s)}, {_ts(e)}, {_lit(s, hourly)}, '{k}')"
            for s, e, k in zip(window.starts, window.ends, window.keys, strict=True))
        spark.sql(f"SELECT * FROM VALUES {values} AS b(s, e, p, k)").createOrReplaceTempView("_mlinfra_bounds")
        elsewhere = lake.current_files(con, root, table)
        if elsewhere:  # ids landed in another partition: the window's copy is a duplicate
            spark.read.parquet(*elsewhere).where(
                f"_partition < {_lit(window.start, hourly)} OR _partition >= {_lit(window.end, hourly)}"
            ).selectExpr(f"CAST({rid} AS STRING) AS _id").distinct().createOrReplaceTempView("_mlinfra_elsewhere")
            dup = f"CASE WHEN d._id IS NOT NULL THEN 'duplicate id {rid}: already in {table} (another partition)' END"
            join = f"LEFT JOIN _mlinfra_elsewhere d ON d._id = CAST(r.{rid} AS STRING)"
        else:
            dup, join = "CAST(NULL AS STRING)", ""
        flags = expectation_flags(spec, typed_types)
        checked = [(o, p) for o, p in flags if p is not None]
        expect = ", ".join(f"CASE WHEN {p} THEN '{o.expectation}({o.column})' END" for o, p in checked)
        flag_cols = ", ".join(f"CAST({p} AS INT) AS _f{i}" for i, (_, p) in enumerate(checked))
        spark.sql(
            f"SELECT r.*, b.p AS _partition, b.k AS {lake.PKEY} FROM _mlinfra_typed r JOIN _mlinfra_bounds b "
            f"ON r.{ts} >= b.s AND r.{ts} < b.e").createOrReplaceTempView("_mlinfra_window")
        spark.sql(
            f"SELECT w.*, {flag_cols}, nullif(concat_ws('; ', {expect}), '') AS {EXPECT} FROM _mlinfra_window w"
        ).createOrReplaceTempView("_mlinfra_judged")
        verdict = spark.sql(
            f"SELECT r.*, nullif(concat_ws('; ', r.{TYPE_ERRORS}, r.{EXPECT}, {dup}), '') AS _reason "
            f"FROM _mlinfra_judged r {join}").cache()
        verdict.createOrReplaceTempView("_mlinfra_verdict")
        try:
            return _land(spark, con, spec, window, root, stage, flags, run), run
        finally:
            verdict.unpersist()
    finally:
        for view in ("_mlinfra_source", "_mlinfra_typed", "_mlinfra_bounds", "_mlinfra_window",
                     "_mlinfra_judged", "_mlinfra_elsewhere", "_mlinfra_verdict"):
            spark.catalog.dropTempView(view)
        shutil.rmtree(stage, ignore_errors=True)


def _land(spark: Any, con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window, root: Path,  # noqa: ANN401
          stage: Path, flags: list, run: SparkIngest) -> IngestResult:
    """Count, write and commit the judged window (view `_mlinfra_verdict`) and the rows of no partition."""
    ts, rid, table = spec.timestamp_column, spec.id_column, spec.raw_table
    cols = spec.source_columns
    checked = [(o, p) for o, p in flags if p is not None]
    first, upper = _bounds(spec)
    with run.timed("check"):
        counts = spark.sql("SELECT " + ", ".join(
            [f"sum(_f{i})" for i in range(len(checked))] + ["count(*)", "count(_reason)", f"count({EXPECT})"]
        ) + " FROM _mlinfra_verdict").first()
    n_flags = len(checked)
    rows_in, quarantined = int(counts[n_flags] or 0), int(counts[n_flags + 1] or 0)
    unexpected = {(o.expectation, o.column): int(counts[i] or 0) for i, (o, _) in enumerate(checked)}
    outcomes = [ExpectationOutcome(o.expectation, o.column, unexpected.get((o.expectation, o.column), 0) == 0,
                                   unexpected.get((o.expectation, o.column), 0)) for o, _ in flags]
    # the row as the DuckDB engine records it: missing values as null (Spark drops them by
    # default; NaN is missing there too), timestamps as their text ('2024-01-01 10:00:00')
    types = dict(spark.table("_mlinfra_verdict").dtypes)

    def value(c: str) -> str:
        if types[c].startswith("timestamp"):
            return f"CAST({c} AS STRING)"
        return f"nanvl({c}, CAST(NULL AS {types[c].upper()}))" if types[c] in FLOAT_TYPES else c

    pairs = ", ".join(f"'{c}', {value(c)}" for c in cols)
    record = f"to_json(named_struct({pairs}), map('ignoreNullFields', 'false'))"
    now = "CAST(current_timestamp() AS TIMESTAMP_NTZ)"
    ptype = "TIMESTAMP_NTZ" if spec.source.cadence == "hourly" else "DATE"
    good = spark.sql(f"SELECT {', '.join(cols)}, _partition, {now} AS _ingested_at, {lake.PKEY} "
                     "FROM _mlinfra_verdict WHERE _reason IS NULL")
    bad = spark.sql(
        f"SELECT '{table}' AS source_table, _partition, CAST({rid} AS STRING) AS row_id, _reason AS reason, "
        f"{record} AS record, {now} AS quarantined_at, {lake.PKEY} FROM _mlinfra_verdict WHERE _reason IS NOT NULL")
    outside = spark.sql(
        f"SELECT '{table}' AS source_table, CAST(NULL AS {ptype}) AS _partition, CAST({rid} AS STRING) AS row_id, "
        f"concat(CASE WHEN {ts} IS NULL THEN 'timestamp {ts} is missing or not a timestamp' "
        f"WHEN {ts} < {_ts(first)} THEN 'timestamp {ts} before source.start_date' "
        f"ELSE 'timestamp {ts} after the last partition (source.end_date or the future)' END, "
        f"coalesce(concat('; ', {TYPE_ERRORS}), '')) AS reason, {record} AS record, {now} AS quarantined_at, "
        f"'{OUTSIDE_KEY}' AS {lake.PKEY} FROM _mlinfra_typed "
        f"WHERE {ts} IS NULL OR {ts} < {_ts(first)} OR {ts} >= {_ts(upper)}")
    raw_stage, quarantine_stage = stage / "raw", stage / "quarantine"
    with run.timed("write"):
        # one file per partition and commit
        good.repartition(lake.PKEY).write.partitionBy(lake.PKEY).parquet(str(raw_stage))
        lake.write_schema(good.drop(lake.PKEY).schema, raw_stage)
        rejected = bad.unionByName(outside)
        rejected.repartition(lake.PKEY).write.partitionBy(lake.PKEY).parquet(str(quarantine_stage))
        lake.write_schema(rejected.drop(lake.PKEY).schema, quarantine_stage)
    with run.timed("great_expectations_sample"):
        run.disagreements, run.sampled_rows = cross_check(spark, spec, rows_in, int(counts[n_flags + 2] or 0))
    with run.timed("commit"):
        lake.commit(con, root, [  # raw rows and their quarantine in one transaction
            lake.Write(table, raw_stage, window.keys, [*cols, "_partition", "_ingested_at"]),
            lake.Write(QUARANTINE, quarantine_stage, [*window.keys, OUTSIDE_KEY], QUARANTINE_COLUMNS,
                       {"record": "JSON"})])
        rows_outside = con.execute(
            f"SELECT count(*) FROM {QUARANTINE} WHERE source_table = ? AND _partition IS NULL", [table]
        ).fetchall()[0][0]
    validation = Validation(rows=rows_in, outcomes=outcomes)
    return IngestResult(rows_in, rows_in - quarantined, quarantined, int(rows_outside), validation)


def cross_check(spark: Any, spec: DatasetSpec, total: int, flagged: int, rows: int = SAMPLE_ROWS) -> tuple[list[str], int]:  # noqa: ANN401
    """Great Expectations on a sample of the judged window (view `_mlinfra_verdict`, `total`
    rows of which the suite flagged `flagged`): about `rows` / 2 rows by the hash of their id and
    about `rows` / 2 of the flagged ones, in one pass. A sampled id brings its rows, at most
    COPIES of them (the copies of a repeated id share its hash), so uniqueness is judged on
    repeated ids as on the whole window; rows without an id are sampled by their values. Returns the
    rows where GX's reasons differ from Spark's (one line each; empty when they agree) and the
    rows sampled."""
    rid = spec.id_column
    if not total:
        return [], 0
    buckets = 10_000

    def keep(n: int) -> int:
        return max(1, math.ceil(buckets * rows / 2 / max(n, 1)))

    row = ", ".join(spec.source_columns)
    # rows without an id have no copies to bring: sampled by the hash of their values
    bucket = (f"pmod(CASE WHEN {rid} IS NULL THEN hash({row}) ELSE hash(CAST({rid} AS STRING)) END, "
              f"{buckets})")
    # at most COPIES rows of one id: GX and Spark flag every copy of a repeated id alike, so a
    # few copies judge the group as well as all of them, and one id repeated a million times
    # cannot bring a million rows to the driver
    sample = spark.sql(
        f"SELECT * EXCEPT (_copy) FROM (SELECT *, CASE WHEN {rid} IS NULL THEN 1 ELSE row_number() OVER "
        f"(PARTITION BY {rid} ORDER BY hash({row})) END AS _copy FROM _mlinfra_verdict WHERE {bucket} < {keep(total)} "
        f"OR ({EXPECT} IS NOT NULL AND {bucket} < {keep(flagged)})) WHERE _copy <= {COPIES}"
    ).toPandas()
    if sample.empty:
        return [], 0
    sample = sample.sort_values(rid, key=lambda c: c.astype(str), kind="stable").reset_index(drop=True)
    validation = validate(spec, sample[spec.source_columns])
    out = []
    for i, spark_reason in enumerate(sample[EXPECT]):
        gx = "; ".join(validation.row_reasons.get(i, [])) or None
        mine = spark_reason if isinstance(spark_reason, str) else None
        if gx != mine:
            out.append(f"{rid} {sample[rid].iloc[i]}: Spark {mine!r}, Great Expectations {gx!r}")
    return out, len(sample)
