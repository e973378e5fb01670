"""The `monitoring/shadow` asset: the shadow model scores each partition the champion scored, and
after `serving.shadow_days` partitions it is promoted or kept out (monitoring.shadow)."""

from datetime import UTC, datetime

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.monitoring import scoring, shadow
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import MLflowTracker, Warehouse
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import figure_or_reason as _figure
from mlinfra_assets.stage import round_figures
from mlinfra_assets.warehouse.partitions import partitions_for, window_of

NO_SHADOW = ("none: no challenger is in its shadow period (the gate sets alias `shadow` when its figures say "
             "promote, a champion exists and serving.shadow_days > 0)")


def build_shadow(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.SHADOW,
        deps=[keys.PREDICTIONS],
        group_name="monitoring",
        kinds={"duckdb", "pytorch", "mlflow"},
        partitions_def=partitions_for(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def shadow_(context: dg.AssetExecutionContext, warehouse: Warehouse, mlflow: MLflowTracker) -> dg.MaterializeResult:
        """The model behind alias `shadow` (a challenger the gate would promote) scores the
        partitions the champion scored, into monitoring.shadow_predictions (the columns of
        monitoring.predictions). Once it has scored serving.shadow_days partitions it is compared
        with the champion on the same rows (predicted class shares; the realized metric where
        labels arrived) and promoted (alias `champion` moves to it) or kept out; each decision is
        a row of monitoring.shadow_decisions. Without a shadow model nothing is scored."""
        from mlinfra_assets.training import registry

        pw = window_of(spec, context)
        version = registry.alias_version(mlflow, spec.name, registry.SHADOW)
        if version is None:
            return dg.MaterializeResult(metadata={"shadow_version": NO_SHADOW, "window": pw.label,
                                                  "dagster/row_count": _rows(warehouse)})
        model = registry.load_version(mlflow, spec.name, version)
        with warehouse.connect(read_only=True) as con:
            rows = scoring.read_window(con, spec, pw.start, pw.end)
        if rows.empty:
            raise ValueError(f"{spec.raw_table} has no rows in {pw.label}: materialize raw/{spec.source.name} "
                             "and monitoring/predictions for these partitions first")
        now = datetime.now(UTC).replace(tzinfo=None)
        scored = scoring.score(model, spec, rows, now)
        with warehouse.connect() as con:
            scoring.replace_window(con, spec, pw.start, pw.end, scored, shadow.TABLE)
            compared = shadow.compare(con, spec, str(version))
            decision, reason = shadow.decide(compared, spec)
            if decision != shadow.WAITING:
                shadow.record(con, compared, decision, reason, now)
            total = con.execute(f"SELECT count(*) FROM {shadow.TABLE}").fetchall()[0][0]
        # the champion alias moves before `shadow` goes: the champion is never unset
        if decision == shadow.PROMOTED:
            registry.set_alias(mlflow, spec.name, registry.CHAMPION, str(version))
        if decision != shadow.WAITING:
            registry.remove_alias(mlflow, spec.name, registry.SHADOW)
            registry.tag_version(mlflow, spec.name, str(version), "shadow_decision", f"{decision}: {reason}")
        log = context.log.warning if decision == shadow.KEPT_OUT else context.log.info
        log(f"shadow v{version}: {decision} ({reason})")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": int(total),
            "rows_in_window": len(scored),
            "window": pw.label,
            "shadow_version": str(version),
            "champion_version": compared.champion or "none",
            "decision": decision,
            "reason": reason,
            "partitions_scored": len(compared.partitions),
            "shadow_days": spec.serving.shadow_days,
            "rows_compared": compared.rows,
            "share_change": _figure(compared.share_change, "no row scored by both"),
            "labeled_rows": compared.labeled_rows,
            "shadow_realized": _figure(compared.realized["shadow"], "too few labels"),
            "champion_realized": _figure(compared.realized["champion"], "too few labels"),
            "side_by_side": df_markdown(compared.side_by_side(spec)),
            "predicted_shares": png_markdown(shadow.shares_plot(compared), "predicted class shares"),
        })

    return shadow_


def _rows(warehouse: Warehouse) -> int:
    return warehouse.row_count(shadow.TABLE) if warehouse.table_exists(shadow.TABLE) else 0
