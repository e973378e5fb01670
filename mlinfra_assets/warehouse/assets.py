"""Warehouse assets: the demo source, and raw ingest with its Great Expectations gate."""

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.plots import df_markdown
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.demo import generator as demo
from mlinfra_assets.warehouse.ingest import ingest_window
from mlinfra_assets.warehouse.source import partitions_for

RAW_SUITE_CHECK = "great_expectations_suite"


def build_demo_source(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="demo_warehouse",
        specs=[
            dg.AssetSpec(
                keys.source_key(spec),
                group_name="warehouse",
                kinds={"duckdb"},
                description="Simulated card transactions (no label): the demo's source table.",
            ),
            dg.AssetSpec(
                keys.SOURCE_ORACLE,
                group_name="warehouse",
                kinds={"duckdb"},
                description="Hidden ground truth of the demo: evaluation and the simulated "
                "annotator only, never a training feature.",
            ),
        ],
        pool=keys.WAREHOUSE_POOL,
    )
    def demo_warehouse(context: dg.AssetExecutionContext, warehouse: Warehouse):
        """Generate the demo warehouse (deterministic; MLINFRA_DEMO_ROWS sets its size)."""
        tables = demo.generate(spec)
        with warehouse.connect() as con:
            counts = demo.write(con, tables)
        fraud_rate = float(tables.labels["label"].mean())
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

    @dg.multi_asset(
        name=f"raw_{spec.source.name}",
        specs=[
            dg.AssetSpec(
                raw_key,
                deps=[keys.source_key(spec)],
                group_name="warehouse",
                kinds={"duckdb"},
                description=f"Rows of {spec.source.name} that passed the spec's suite, one daily "
                "partition per day of the timestamp column.",
            ),
            dg.AssetSpec(
                keys.QUARANTINE,
                deps=[keys.source_key(spec)],
                group_name="warehouse",
                kinds={"duckdb"},
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
    )
    def ingest(context: dg.AssetExecutionContext, warehouse: Warehouse):
        """Ingest the partition window: validate, land good rows, quarantine the rest."""
        window = context.partition_time_window
        start, end = window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)
        with warehouse.connect() as con:
            result = ingest_window(con, spec, start, end)
            total = con.execute(f"SELECT count(*) FROM {spec.raw_table}").fetchall()[0][0]
            per_day = con.execute(
                f"SELECT _partition::VARCHAR AS day, count(*) AS rows FROM {spec.raw_table} "
                "WHERE _partition >= ? AND _partition < ? GROUP BY 1 ORDER BY 1",
                [start.date(), end.date()],
            ).df()
            typical = con.execute(
                f"SELECT median(n) FROM (SELECT count(*) AS n FROM {spec.raw_table} GROUP BY _partition)"
            ).fetchall()[0][0]
        v = result.validation
        limit = spec.thresholds.max_quarantine_share
        problems = list(v.table_failures)
        empty_days = sorted(set(context.partition_keys) - set(per_day["day"]))
        if result.rows_in == 0:
            problems.append("no rows in the source for this window")
        elif empty_days:
            problems.append(f"no rows landed on {', '.join(empty_days)}")
        ratio = spec.thresholds.max_volume_ratio
        if typical and len(per_day) and per_day["rows"].max() > ratio * typical:
            problems.append(
                f"volume spike: {int(per_day['rows'].max())} rows in a day, over {ratio:g}x the "
                f"median day ({typical:.0f} rows)"
            )
        if result.quarantine_share > limit:
            problems.append(
                f"{result.quarantine_share:.1%} of rows quarantined (limit {limit:.1%})"
            )
        failed = [o for o in v.outcomes if not o.success]
        yield dg.MaterializeResult(
            asset_key=raw_key,
            metadata={
                "dagster/row_count": int(total),
                "rows_in_window": result.rows_in,
                "rows_landed": result.rows_landed,
                "rows_quarantined": result.rows_quarantined,
                "rows_outside_partitions": result.rows_outside,
                "window": f"{start:%Y-%m-%d} .. {end:%Y-%m-%d}",
                "rows_per_day": df_markdown(per_day) if len(per_day) <= 62 else None,
            },
        )
        yield dg.MaterializeResult(
            asset_key=keys.QUARANTINE,
            metadata={
                "rows_quarantined_in_window": result.rows_quarantined,
                "rows_outside_partitions": result.rows_outside,
            },
        )
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
