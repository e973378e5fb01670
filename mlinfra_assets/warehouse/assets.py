"""Warehouse assets: the demo source, and raw ingest with its Great Expectations gate."""

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.demo import generator as demo
from mlinfra_assets.plots import df_markdown
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import round_figures
from mlinfra_assets.warehouse.ingest import ingest_window
from mlinfra_assets.warehouse.partitions import partitions_for, window_of

RAW_SUITE_CHECK = "great_expectations_suite"
# one group per DuckDB schema, so the UI never shows two same-named nodes (source.transactions,
# raw.transactions) in one group
SOURCE_GROUP, ORACLE_GROUP, RAW_GROUP = "source", "oracle", "raw"


def build_demo_source(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="demo_warehouse",
        specs=[
            dg.AssetSpec(
                keys.source_key(spec),
                group_name=SOURCE_GROUP,
                kinds={"duckdb"},
                description="The demo's source table: simulated card transactions, no label (raw ingests it).",
            ),
            dg.AssetSpec(
                keys.SOURCE_ORACLE,
                group_name=ORACLE_GROUP,
                kinds={"duckdb"},
                description="Hidden ground truth of the demo: evaluation and the simulated "
                "annotator only, never a training feature.",
            ),
        ],
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def demo_warehouse(context: dg.AssetExecutionContext, warehouse: Warehouse):
        """Generate the demo warehouse (deterministic; MLINFRA_DEMO_ROWS sets its size)."""
        with warehouse.connect() as con:
            counts, fraud_rate = demo.write_demo(con, spec)
        context.log.info(f"demo warehouse: {counts}")
        yield dg.MaterializeResult(
            asset_key=keys.source_key(spec),
            metadata={
                "dagster/row_count": counts[spec.source.table],
                "customers": counts["source.customers"],
                "merchants": counts["source.merchants"],
                "days": (spec.source.end_date - spec.source.start_date).days
                if spec.source.end_date
                else None,
                "drift_day": spec.demo.drift.day,
            },
        )
        yield dg.MaterializeResult(
            asset_key=keys.SOURCE_ORACLE,
            metadata={"dagster/row_count": counts["oracle.labels"], "positive_rate": fraud_rate},
        )

    return demo_warehouse


def build_raw(spec: DatasetSpec) -> dg.AssetsDefinition:
    raw_key = keys.raw_key(spec)
    on_spark = spec.warehouse.engine == "spark"
    kinds = {"spark", "parquet"} if on_spark else {"duckdb"}

    @dg.multi_asset(
        name=f"raw_{spec.source.name}",
        specs=[
            dg.AssetSpec(
                raw_key,
                deps=[keys.source_key(spec)],
                group_name=RAW_GROUP,
                kinds=kinds,
                description=f"Rows of {spec.source.name} that passed the spec's suite: "
                + (
                    f"one {spec.source.cadence} partition per window of {spec.timestamp_column} "
                    "(`_partition` is the window's start)."
                    if spec.has_timestamp
                    else "one partition per ingest batch (a new file of the source, or a run over "
                    "the source's new rows); `_partition` is the batch number, raw.batches names "
                    "each batch's file."
                ),
            ),
            dg.AssetSpec(
                keys.QUARANTINE,
                deps=[keys.source_key(spec)],
                group_name=RAW_GROUP,
                kinds=kinds,
                description="Rejected raw rows, each with the expectations it failed (JSON record).",
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                RAW_SUITE_CHECK,
                asset=raw_key,
                blocking=True,
                description="The Great Expectations suite built from the spec: fails when a "
                "table-level expectation fails or the quarantined share exceeds "
                "thresholds.max_quarantine_share.",
            )
        ],
        partitions_def=partitions_for(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=keys.WAREHOUSE_POOL,
        # the Spark engine's step also needs Dagster's PySpark resource (a decorator cannot name
        # it for one engine and take the warehouse as an argument for both)
        required_resource_keys={"warehouse", "pyspark"} if on_spark else {"warehouse"},
    )
    @round_figures
    def ingest(context: dg.AssetExecutionContext):
        """Ingest the partition window: validate, land good rows, quarantine the rest."""
        warehouse: Warehouse = context.resources.warehouse
        window = window_of(spec, context)
        spark_run = None
        with warehouse.connect() as con:
            if on_spark:
                from mlinfra_assets import lake
                from mlinfra_assets.warehouse.ingest_spark import ingest_window_spark

                result, spark_run = ingest_window_spark(
                    context.resources.pyspark.spark_session, con, spec, window, lake.lake_root(spec, warehouse.path))
            else:
                result = ingest_window(con, spec, window)
            total = con.execute(f"SELECT count(*) FROM {spec.raw_table}").fetchall()[0][0]
            per_partition = con.execute(
                f"SELECT _partition, count(*) AS rows FROM {spec.raw_table} "
                "WHERE _partition >= ? AND _partition < ? GROUP BY 1 ORDER BY 1",
                [window.start, window.end],
            ).df()
            typical = con.execute(
                f"SELECT median(n) FROM (SELECT count(*) AS n FROM {spec.raw_table} GROUP BY _partition)"
            ).fetchall()[0][0]
        per_partition.insert(0, "partition", [window.key_of(p) for p in per_partition.pop("_partition")])
        v = result.validation
        limit = spec.thresholds.max_quarantine_share
        problems = list(v.table_failures)
        if spark_run is not None and spark_run.disagreements:
            problems.append(
                f"Spark's checks and Great Expectations disagree on {len(spark_run.disagreements)} of "
                f"{spark_run.sampled_rows} sampled row(s), first: {spark_run.disagreements[0]}"
            )
        empty = [k for k in window.keys if k not in set(per_partition["partition"])]
        what = "batch" if not spec.has_timestamp else "window"
        if result.rows_in == 0:
            problems.append(
                f"no rows in the source for this {what}"
                + ("" if spec.has_timestamp else f" (no new file matches {spec.source.path}?)")
            )
        elif empty:
            problems.append(f"no rows landed in {', '.join(empty)}")
        ratio = spec.thresholds.max_volume_ratio
        if spec.has_timestamp and typical and len(per_partition) and per_partition["rows"].max() > ratio * typical:
            problems.append(
                f"volume spike: {int(per_partition['rows'].max())} rows in a partition, over {ratio:g}x "
                f"the median partition ({typical:.0f} rows)"
            )
        if result.quarantine_share > limit:
            problems.append(
                f"{result.quarantine_share:.1%} of rows quarantined (limit {limit:.1%})"
            )
        yield dg.MaterializeResult(
            asset_key=raw_key,
            metadata={
                "dagster/row_count": int(total),
                "rows_in_window": result.rows_in,
                "rows_landed": result.rows_landed,
                "rows_quarantined": result.rows_quarantined,
                "rows_outside_partitions": result.rows_outside,
                "window": window.label,
                "partitions": len(window.keys),
                "rows_per_partition": df_markdown(per_partition) if len(per_partition) <= 62 else None,
                **(
                    {"batch_files": df_markdown(result.batches)}
                    if not spec.has_timestamp and len(result.batches) <= 62
                    else {}
                ),
                "engine": spec.warehouse.engine,
                **(
                    {
                        "spark_seconds": dg.MetadataValue.json({k: round(v, 2) for k, v in spark_run.seconds.items()}),
                        "great_expectations_sampled_rows": spark_run.sampled_rows,
                    }
                    if spark_run is not None
                    else {}
                ),
            },
        )
        yield dg.MaterializeResult(
            asset_key=keys.QUARANTINE,
            metadata={
                "rows_quarantined_in_window": result.rows_quarantined,
                "rows_outside_partitions": result.rows_outside,
            },
        )
        failed = [o for o in v.outcomes if not o.success]
        yield dg.AssetCheckResult(
            check_name=RAW_SUITE_CHECK,
            asset_key=raw_key,
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(problems) or "all expectations met",
            metadata={
                "expectations": dg.MetadataValue.md(v.markdown()),
                "failed_expectations": dg.MetadataValue.json(
                    [
                        {"expectation": o.expectation, "column": o.column, "unexpected_rows": o.unexpected_count}
                        for o in failed
                    ]
                ),
                "rows_quarantined": result.rows_quarantined,
                "quarantine_share": float(result.quarantine_share),
            },
        )

    return ingest
