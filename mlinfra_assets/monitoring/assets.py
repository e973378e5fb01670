"""Monitoring assets: the champion's predictions and the drift report, per partition (a time
window of the spec's cadence, or an ingest batch)."""

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.monitoring import (
    drift,
    estimation,
    performance,
    performance_rule,
    report,
    scoring,
)
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import MLflowTracker, Warehouse
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import round_figures
from mlinfra_assets.warehouse.partitions import Window, partitions_for, window_of

NO_BATCH = "no batch to compare yet"


def build_predictions(spec: DatasetSpec) -> dg.AssetsDefinition:
    positive = spec.prob_columns[spec.positive_index]
    binary = spec.n_classes == 2

    @dg.asset(
        key=keys.PREDICTIONS,
        deps=[keys.raw_key(spec), keys.EVALUATION],
        group_name="monitoring",
        kinds={"duckdb", "pytorch", "mlflow"},
        partitions_def=partitions_for(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def predictions(
        context: dg.AssetExecutionContext, warehouse: Warehouse, mlflow: MLflowTracker
    ) -> dg.MaterializeResult:
        """The champion's scores of each partition's raw rows: one probability per class
        (`prob_<class>`), the predicted class index (`_prediction`), the model version
        (`_model_version`) and `_row_id`, `_partition`, `_scored_at`. A re-run replaces the
        window's rows."""
        pw = window_of(spec, context)
        model = scoring.load_champion(mlflow, spec)
        with warehouse.connect() as con:
            scored = scoring.score_window(con, spec, model, pw.start, pw.end,
                                          datetime.now(UTC).replace(tzinfo=None), pw.key_of)
            total = con.execute(f"SELECT count(*) FROM {scoring.TABLE}").fetchall()[0][0]
        if scored.rows == 0:
            raise ValueError(
                f"{spec.raw_table} has no rows in {pw.label}: materialize raw/{spec.source.name} "
                "for these partitions first"
            )
        per_partition = scored.per_partition
        context.log.info(f"scored {scored.rows} rows of {pw.label} with version {model.version}")
        shown = scored.shown
        title = positive if binary else "probability of the predicted class"
        rows = per_partition["rows"].to_numpy()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": int(total),
                "rows_in_window": scored.rows,
                "mean_confidence": scored.mean_confidence,
                "predicted_shares": dg.MetadataValue.json(scored.predicted_shares),
                **(
                    {
                        "mean_score": float(np.average(per_partition["mean_score"], weights=rows)),
                        "positive_rate": float(np.average(per_partition["positive_rate"], weights=rows)),
                    }
                    if binary
                    else {}
                ),
                "model_version": str(model.version),
                "window": pw.label,
                "per_partition": df_markdown(per_partition) if len(per_partition) <= 62 else None,
                "score_histogram": png_markdown(
                    scoring.score_histogram(shown, title), f"{title}, v{model.version}"
                ),
            }
        )

    return predictions


def build_performance(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.PERFORMANCE,
        deps=[keys.PREDICTIONS],
        group_name="monitoring",
        kinds={"duckdb"},
        partitions_def=partitions_for(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def performance_(
        context: dg.AssetExecutionContext, warehouse: Warehouse, mlflow: MLflowTracker
    ) -> dg.MaterializeResult:
        """How well the champion does on each partition, before and after labels arrive: the
        spec's metric (`training.metric`) estimated from the champion's calibrated probabilities
        alone, with the 95% interval the labels' chance spreads it by (monitoring/estimation.py,
        SQL over monitoring.predictions), beside the realized metric on annotated rows that were
        not training rows (with its count and bootstrap interval; "too few labels" below
        thresholds.min_labeled_rows). Writes monitoring.performance; a re-run replaces the
        window's rows. Each partition's retraining decision (monitoring/performance_rule.py) is
        in the metadata (`decisions`, `dropped_partitions`): the drift sensor retrains on a drop
        as on drift."""
        from mlinfra_assets.training.evaluation import estimated_metric

        pw = window_of(spec, context)
        if not warehouse.table_exists(scoring.TABLE):
            raise ValueError("monitoring.predictions does not exist: materialize monitoring/predictions first")
        with warehouse.connect() as con:
            table = estimation.performance_table(con, spec, pw.start, pw.end)
            if table.empty:
                raise ValueError(f"monitoring.predictions has no rows in {pw.label}: materialize "
                                 "monitoring/predictions for these partitions first")
            uncalibrated = con.execute(
                f"SELECT count(*) FROM {scoring.TABLE} WHERE _partition >= ? AND _partition < ? "
                f"AND {spec.calibrated_columns[0]} IS NULL", [pw.start, pw.end]).fetchall()[0][0]
            estimation.replace_window(con, spec, pw.start, pw.end, table)
            total = con.execute(f"SELECT count(*) FROM {estimation.TABLE}").fetchall()[0][0]
            holdout = performance_rule.holdout_figures(con, spec)
            expected = performance_rule.holdout_figures(con, spec, estimated_metric(spec.metric))
        drop = spec.thresholds.metric_drop
        versions = sorted({v for v in ",".join(table["model_version"].astype(str)).split(",") if v})
        rule = performance_rule.decisions(table, holdout, drop, _training_windows(mlflow, spec, versions), expected)
        dropped = [pw.key_of(p) for p in rule.loc[rule["dropped"], "_partition"]]
        for row in rule[rule["dropped"]].to_dict("records"):
            context.log.warning(f"performance dropped on {pw.key_of(row['_partition'])}: {row['why']}")
        metric = performance.metric_name(spec)
        both = table.dropna(subset=["estimated", "realized_metric"])
        last = table.dropna(subset=["estimated"])
        why = (f"{uncalibrated} predictions in {pw.label} were scored before calibration existed: "
               "re-materialize monitoring/predictions" if uncalibrated else f"{metric} is undefined on the predictions")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": int(total),
            "metric": metric,
            "partitions": len(table),
            "estimated": float(last["estimated"].iloc[-1]) if len(last) else why,
            "estimated_interval": (f"[{last['estimated_low'].iloc[-1]:.4f}, {last['estimated_high'].iloc[-1]:.4f}] "
                                   f"(95%, {int(last['rows'].iloc[-1])} rows, {pw.key_of(last['_partition'].iloc[-1])})"
                                   if len(last) else why),
            "estimated_min": float(last["estimated"].min()) if len(last) else why,
            "realized_partitions": len(both),
            "mean_abs_error": float((both["estimated"] - both["realized_metric"]).abs().mean()) if len(both)
            else "no partition has both an estimate and a realized figure yet",
            "realized_inside_interval": (
                f"{int(both['realized_metric'].between(both['estimated_low'], both['estimated_high']).sum())} "
                f"of {len(both)}") if len(both) else "no realized figure yet",
            "holdout_metric": (min(holdout[v] for v in versions if v in holdout) if any(v in holdout for v in versions)
                               else f"no holdout figure of version(s) {', '.join(versions)} in training.evaluation"),
            "drop_detected": bool(dropped),
            "dropped_partitions": dg.MetadataValue.json(dropped),
            "retrain_rule": (f"upper end of the 95% interval below the holdout figure minus thresholds.metric_drop {drop:g}"
                             if drop is not None else "off (thresholds.metric_drop is null)"),
            "decisions": df_markdown(rule.assign(_partition=[pw.key_of(p) for p in rule["_partition"]]))
            if len(rule) <= 62 else None,
            "window": pw.label,
            "per_partition": df_markdown(estimation.summary(table, pw.key_of)) if len(table) <= 62 else None,
            "estimated_vs_realized": png_markdown(
                estimation.estimated_vs_realized(table, metric, pw.key_of),
                f"{metric}: estimated vs realized per partition", size=(8, 4)),
        })

    return performance_


# the partitions a model was trained on are compared in this many blocks: each comparison
# reads the reference without its block, so two read it about once in all (four cost 12% more
# of a whole 20k-row demo run)
HELD_OUT_BLOCKS = 2


def _groups(spec: DatasetSpec, pw: Window, trained: tuple[object, object] | None
            ) -> list[tuple[object, object, tuple | None]]:
    """(start, end, reference exclusion) of each comparison. The window's partitions the model
    was trained on (inside `trained`, the reference's first and last partition) are split into
    up to HELD_OUT_BLOCKS contiguous blocks, each compared with the reference without that
    block (held out, as in cross-validation: a partition never meets itself, and a history of
    any length costs two comparisons, not one per partition); each run of the window's other
    partitions is compared with the whole reference (without a timestamp, each batch alone)."""
    spans = list(zip(pw.starts, pw.ends, strict=True))
    inside = [s for s in spans if trained is not None and trained[0] <= s[0] <= trained[1]]
    size = -(-len(inside) // HELD_OUT_BLOCKS) if inside else 1
    groups: list[tuple[object, object, tuple | None]] = [
        (block[0][0], block[-1][1], (block[0][0], block[-1][1]))
        for block in (inside[i:i + size] for i in range(0, len(inside), size))
    ]
    rest: list[tuple[object, object, tuple | None]] = []
    for start, end in (s for s in spans if s not in inside):
        if spec.has_timestamp and rest and rest[-1][1] == start:
            rest[-1] = (rest[-1][0], end, None)  # one comparison for a run of untrained partitions
        else:
            rest.append((start, end, None))
    return sorted(groups + rest, key=lambda g: g[0])


def build_drift_report(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.DRIFT_REPORT,
        deps=[keys.PREDICTIONS, keys.TRAINING_SET],
        group_name="monitoring",
        kinds={"duckdb"},
        partitions_def=partitions_for(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def drift_report(
        context: dg.AssetExecutionContext, warehouse: Warehouse, mlflow: MLflowTracker
    ) -> dg.MaterializeResult:
        """Per partition and feature, how far the partition's raw rows moved from the training
        reference (all raw rows of the partitions the champion's training set came from,
        labelled or not; without a timestamp, the other batches of it: a batch is never
        compared with itself, and a lone batch has nothing to compare yet): PSI over
        reference-decile bins (categories for categoricals), the KS statistic and p-value
        (numerics), chi-squared (categoricals). A feature drifts when its test is significant
        after correction and its effect is large (PSI > thresholds.psi_alert or KS >
        thresholds.ks_alert); a partition drifts when more than thresholds.drift_share_alert
        of its features do. Rows of kind `prediction` compare the champion's output on the
        partition with the same model's on the reference (two classes: the positive
        probability; more: the confidence and the predicted class shares), reported, not
        counted in the share; rows of kind `performance` hold the realized training metric
        once annotators label the partition's rows."""
        pw = window_of(spec, context)
        if not warehouse.table_exists("training.training_set"):
            raise ValueError(
                "training.training_set does not exist: materialize training/training_set first"
            )
        model, version, why = _champion_for(context, warehouse, mlflow, spec, pw)
        span, reference_note = _reference_window(mlflow, spec, version)
        tables, alone, reference_rows = [], [], 0
        with warehouse.connect() as con:
            staged = drift.stage_reference(con, spec, span)
            if not staged:
                raise ValueError(f"the drift reference ({reference_note}) has no row in {spec.raw_table}")
            trained = drift.reference_span(con)
            if model is not None:  # the model's output on its reference, scored once
                drift.stage_reference_scores(con, spec, model.predict_proba)
            for start, end, exclude in _groups(spec, pw, trained):
                window = drift.stage_window(con, spec, start, end, exclude)
                current, reference = drift.window_sizes(con, spec, window)
                if not current:
                    raise ValueError(
                        f"{spec.raw_table} has no rows in {pw.key_of(start) if exclude else pw.label}: "
                        f"materialize raw/{spec.source.name} first"
                    )
                if not reference:  # the model was trained on this partition alone
                    alone.append(pw.key_of(start))
                    continue
                reference_rows = max(reference_rows, reference)
                if model is not None:
                    drift.stage_prediction(con, spec, window, version)
                tables.append(drift.drift_report(
                    con, spec, window, performance.realized_metric(con, spec, start, end)
                ))
            table = (
                pd.concat(tables, ignore_index=True) if tables
                else pd.DataFrame({c: pd.Series(dtype="object") for c in drift.REPORT_COLUMNS})
            )
            report.replace_window(con, spec, pw.start, pw.end, table)
            total = con.execute(f"SELECT count(*) FROM {report.TABLE}").fetchall()[0][0]
        if alone:
            context.log.info(f"{NO_BATCH} for {', '.join(alone)}: the model was trained on it alone")
        metadata = _drift_metadata(spec, pw, table, total, alone, version, why, reference_rows)
        return dg.MaterializeResult(metadata={**metadata, "reference": reference_note})

    return drift_report


def _drift_metadata(spec: DatasetSpec, pw: Window, table: pd.DataFrame, total: int, alone: list[str],
                    version: str | None, why: str | None, reference_rows: int) -> dict:
    """The drift report's metadata: figures where they can be computed, else why not."""
    thresholds = spec.thresholds
    parts = report.partitions_summary(table, pw.key_of)
    flagged = parts.loc[parts["flagged"].astype(bool), "partition"].tolist()
    realized = table[table["kind"] == "performance"]
    none = (
        f"{NO_BATCH}: the model was trained on {', '.join(alone)} alone (its whole reference)"
        if alone else "no partition compared"
    )

    def figure(value: float, reason: str) -> float | str:
        return reason if value is None or value != value else float(value)

    if parts.empty:
        prediction_psi: float | str = none
    elif version is None:
        prediction_psi = why or "no prediction drift"
    else:
        prediction_psi = figure(parts["prediction_psi"].max(), "no prediction row")
    realized_interval: str = "no realized figure"
    if len(realized) and realized["realized_metric"].notna().any():
        last = realized.dropna(subset=["realized_metric"]).sort_values("_partition").iloc[-1]
        realized_figure: float | str = float(last["realized_metric"])
        realized_interval = (f"[{last['realized_low']:.4f}, {last['realized_high']:.4f}] (95% bootstrap, "
                             f"{int(last['labeled_rows'])} rows, {pw.key_of(last['_partition'])})")
    elif len(realized) and realized["realized_note"].notna().any():
        realized_figure = (f"too few labels: at most {int(realized['labeled_rows'].max())} labeled rows that were not "
                           f"training rows in a partition (thresholds.min_labeled_rows {thresholds.min_labeled_rows})")
    elif len(realized):
        realized_figure = f"{performance.metric_name(spec)} is undefined on the labeled rows"
    else:
        realized_figure = "no annotated row in this window yet"
    return {
        "dagster/row_count": int(total),
        "drift_detected": bool(flagged),
        "drifted_partitions": dg.MetadataValue.json(flagged),
        "compared_partitions": len(parts),
        "comparison": (
            f"the partitions the model was trained on in up to {HELD_OUT_BLOCKS} blocks, each vs the reference "
            "without its block (never itself); the partitions after (or before) them vs the whole reference"
        ),
        "not_compared": dg.MetadataValue.json(alone),
        "drifted_features": int(parts["drifted"].max()) if len(parts) else none,
        "drifted_share": float(parts["drifted_share"].max()) if len(parts) else none,
        "max_psi": figure(parts["max_psi"].max(), none) if len(parts) else none,
        "prediction_psi": prediction_psi,
        "prediction_model_version": version,
        "reference_rows": int(reference_rows) if reference_rows else none,
        "metric": performance.metric_name(spec),
        "realized_metric": realized_figure,
        "realized_interval": realized_interval,
        "labeled_rows": int(realized["labeled_rows"].sum()) if len(realized) else 0,
        "labeled_training_rows": int(realized["labeled_training_rows"].sum()) if len(realized) else 0,
        "empty_partitions": dg.MetadataValue.json(
            [k for k in report.empty_partitions(pw.keys, table, pw.key_of) if k not in alone]
        ),
        "decision_rule": f"{thresholds.drift_correction} at alpha {thresholds.drift_alpha}, "
        f"share > {thresholds.drift_share_alert}",
        "window": pw.label,
        "partitions": df_markdown(parts) if len(parts) else none,
        "features": df_markdown(report.features_summary(table)) if len(table) else none,
        "psi_heatmap": png_markdown(
            report.psi_heatmap(table, thresholds.psi_alert, pw.key_of),
            "PSI per feature and partition",
            size=(8, 4),
        ) if len(parts) else none,
    }


def _training_windows(mlflow: MLflowTracker, spec: DatasetSpec, versions: list[str]) -> dict[str, tuple[str, str]]:
    """The recorded training window of each model version that has one."""
    from mlinfra_assets.training import registry

    windows = {v: registry.training_window(mlflow, spec.name, v) for v in versions}
    return {v: w for v, w in windows.items() if w is not None}


def _reference_window(mlflow: MLflowTracker, spec: DatasetSpec, version: str | None
                      ) -> tuple[tuple[str, str] | None, str]:
    """(the partitions the model that scored the window was trained on, as its version
    recorded them; None: training.training_set's partitions) and a sentence saying which."""
    from mlinfra_assets.training import registry

    version = version or registry.champion_version(mlflow, spec.name)
    span = registry.training_window(mlflow, spec.name, version) if version else None
    if span is None:
        return None, ("the partitions of training.training_set's real rows"
                      + (f" (version {version} recorded no training window)" if version else " (no champion yet)"))
    return span, f"the partitions champion v{version} was trained on, {span[0]} .. {span[1]}"


def _champion_for(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    mlflow: MLflowTracker,
    spec: DatasetSpec,
    pw: Window,
) -> tuple[object, str | None, str | None]:
    """(the champion, its version, None) when the window has predictions by it; else
    (None, None, why there is no prediction drift), with a log line."""

    def none(reason: str) -> tuple[None, None, str]:
        context.log.warning(f"{reason}: no prediction drift in this report")
        return None, None, reason

    if not warehouse.table_exists(scoring.TABLE):
        return none("monitoring.predictions does not exist")
    try:
        versions = warehouse.query_df(
            f"SELECT DISTINCT {scoring.VERSION} FROM {scoring.TABLE} WHERE _partition >= ? AND _partition < ?",
            [pw.start, pw.end],
        )[scoring.VERSION].tolist()
    except Exception as exc:  # a predictions table of an earlier version (re-scored on the next run)
        return none(f"monitoring.predictions cannot be read ({type(exc).__name__})")
    if not versions:
        return none(f"no predictions in {pw.label}")
    try:
        model = scoring.load_champion(mlflow, spec)
    except Exception as exc:  # a broken champion must not stop the feature drift report
        return none(f"the champion failed to load ({exc})")
    if str(model.version) not in versions:
        return none(
            f"predictions in {pw.label} are by version(s) {versions}, the champion is "
            f"{model.version}: re-materialize predictions to get prediction drift"
        )
    return model, str(model.version), None
