"""Monitoring assets: the champion's daily predictions and the daily drift report."""

from datetime import UTC, date, datetime

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.monitoring import drift, performance, report, scoring
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import MLflowTracker, Warehouse
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.partitions import partitions_for, window_of


def _window(context: dg.AssetExecutionContext) -> tuple[date, date]:
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def build_predictions(spec: DatasetSpec) -> dg.AssetsDefinition:
    positive = spec.prob_columns[spec.positive_index]

    @dg.asset(
        key=keys.PREDICTIONS,
        deps=[keys.raw_key(spec), keys.EVALUATION],
        group_name="monitoring",
        kinds={"duckdb", "pytorch", "mlflow"},
        partitions_def=partitions_for(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=keys.WAREHOUSE_POOL,
    )
    def predictions(
        context: dg.AssetExecutionContext, warehouse: Warehouse, mlflow: MLflowTracker
    ) -> dg.MaterializeResult:
        """The champion's scores of each day's raw rows: one probability per class, the
        predicted class index and the model version that scored them. A re-run replaces the
        window's rows."""
        start, end = _window(context)
        model = scoring.load_champion(mlflow, spec)
        with warehouse.connect(read_only=True) as con:
            rows = scoring.read_window(con, spec, start, end)
        if rows.empty:
            raise ValueError(
                f"{spec.raw_table} has no rows in {start}..{end}: materialize raw/{spec.source.name} "
                "for these partitions first"
            )
        scored = scoring.score(model, spec, rows, datetime.now(UTC).replace(tzinfo=None))
        with warehouse.connect() as con:
            scoring.replace_window(con, spec, start, end, scored)
            total = con.execute(f"SELECT count(*) FROM {scoring.TABLE}").fetchall()[0][0]
        per_day = scoring.summary(scored, spec)
        context.log.info(
            f"scored {len(scored)} rows of {start}..{end} with version {model.version}"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": int(total),
                "rows_in_window": len(scored),
                "mean_score": float(scored[positive].mean()),
                "positive_rate": float((scored["prediction"] == spec.positive_index).mean()),
                "model_version": str(model.version),
                "window": f"{start} .. {end}",
                "per_day": df_markdown(per_day) if len(per_day) <= 62 else None,
                "score_histogram": png_markdown(
                    scoring.score_histogram(scored[positive].to_numpy(), positive),
                    f"{positive}, v{model.version}",
                ),
            }
        )

    return predictions


def build_drift_report(spec: DatasetSpec) -> dg.AssetsDefinition:
    thresholds = spec.thresholds

    @dg.asset(
        key=keys.DRIFT_REPORT,
        deps=[keys.PREDICTIONS, keys.TRAINING_SET],
        group_name="monitoring",
        kinds={"duckdb"},
        partitions_def=partitions_for(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=keys.WAREHOUSE_POOL,
    )
    def drift_report(
        context: dg.AssetExecutionContext, warehouse: Warehouse, mlflow: MLflowTracker
    ) -> dg.MaterializeResult:
        """Per day and feature, how far the day's raw rows moved from the reference (all raw
        rows of the days the model was trained on, labelled or not): PSI over reference-decile bins (categories for
        categoricals), the KS statistic and p-value (numerics), chi-squared (categoricals).
        A feature drifts when PSI > thresholds.psi_alert or KS > thresholds.ks_alert; a day
        drifts when more than thresholds.drift_share_alert of its features do. One row of kind
        `prediction` compares the champion's positive probability on the day with the same
        model's scores on the reference rows (reported, not counted in the share)."""
        start, end = _window(context)
        if not warehouse.table_exists("training.training_set"):
            raise ValueError(
                "training.training_set does not exist: materialize training/training_set first"
            )
        reference_scores, version = _reference_scores(context, warehouse, mlflow, spec, start, end)
        with warehouse.connect() as con:
            window = drift.stage_window(con, spec, start, end)
            current, reference = drift.window_sizes(con, spec, window)
            if not current:
                raise ValueError(
                    f"{spec.raw_table} has no rows in {start}..{end}: materialize raw/{spec.source.name} first"
                )
            if not reference:
                raise ValueError(
                    "training.training_set has no real (non-synthetic) rows to use as reference"
                )
            if reference_scores is not None:
                drift.stage_prediction(con, spec, window, reference_scores, version)
            table = drift.drift_report(
                con, spec, window, performance.realized_f1(con, spec, start, end)
            )
            report.replace_window(con, start, end, table)
            total = con.execute(f"SELECT count(*) FROM {report.TABLE}").fetchall()[0][0]
        days = report.partitions_summary(table)
        flagged = days.loc[days["flagged"], "day"].tolist()
        prediction_psi = days["prediction_psi"].max()
        realized = table[table["kind"] == "performance"]
        empty_days = report.empty_days(start, end, table)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": int(total),
                "drift_detected": bool(flagged),
                "drifted_partitions": dg.MetadataValue.json(flagged),
                "drifted_features": int(days["drifted"].max()),
                "drifted_share": float(days["drifted_share"].max()),
                "max_psi": float(days["max_psi"].max()),
                "prediction_psi": None
                if prediction_psi != prediction_psi
                else float(prediction_psi),
                "prediction_model_version": version,
                "reference_rows": int(table["reference_rows"].max()),
                "realized_f1": float(realized["realized_f1"].iloc[-1])
                if len(realized) and realized["realized_f1"].notna().iloc[-1]
                else None,
                "labeled_rows": int(realized["labeled_rows"].sum()),
                "empty_partitions": dg.MetadataValue.json(empty_days),
                "decision_rule": f"{thresholds.drift_correction} at alpha {thresholds.drift_alpha}, "
                f"share > {thresholds.drift_share_alert}",
                "window": f"{start} .. {end}",
                "partitions": df_markdown(days),
                "features": df_markdown(report.features_summary(table)),
                "psi_heatmap": png_markdown(
                    report.psi_heatmap(table, thresholds.psi_alert),
                    "PSI per feature and day",
                    size=(8, 4),
                ),
            }
        )

    return drift_report


def _reference_scores(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    mlflow: MLflowTracker,
    spec: DatasetSpec,
    start: date,
    end: date,
) -> tuple[object, str | None]:
    """The champion's positive probability on the reference rows, when the window has
    predictions by the champion; (None, None) with a log line otherwise."""
    if not warehouse.table_exists(scoring.TABLE):
        context.log.warning(
            "monitoring.predictions does not exist: no prediction drift in this report"
        )
        return None, None
    versions = warehouse.query_df(
        f"SELECT DISTINCT model_version FROM {scoring.TABLE} WHERE _partition >= ? AND _partition < ?",
        [start, end],
    )["model_version"].tolist()
    if not versions:
        context.log.warning(f"no predictions in {start}..{end}: no prediction drift in this report")
        return None, None
    try:
        model = scoring.load_champion(mlflow, spec)
    except Exception as exc:  # a broken champion must not stop the feature drift report
        context.log.warning(f"the champion failed to load ({exc}): no prediction drift in this report")
        return None, None
    if str(model.version) not in versions:
        context.log.warning(
            f"predictions in {start}..{end} are by version(s) {versions}, the champion is "
            f"{model.version}: re-materialize predictions to get prediction drift"
        )
        return None, None
    raw, rid = spec.raw_table, spec.id_column
    rows = warehouse.query_df(  # the reference rows of the feature drift (stage_reference.sql)
        f"SELECT {', '.join(spec.feature_columns)} FROM {raw} WHERE _partition BETWEEN "
        f"(SELECT min(_partition) FROM {raw} WHERE CAST({rid} AS VARCHAR) IN "
        "(SELECT row_id FROM training.training_set WHERE source <> 'synthetic')) AND "
        f"(SELECT max(_partition) FROM {raw} WHERE CAST({rid} AS VARCHAR) IN "
        "(SELECT row_id FROM training.training_set WHERE source <> 'synthetic'))"
    )
    return model.predict_proba(rows)[:, spec.positive_index], str(model.version)
