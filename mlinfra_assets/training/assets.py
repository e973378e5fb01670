"""Training assets: the training set, the model (MLflow run + registry), the holdout gate."""

from datetime import datetime
from pathlib import Path

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import DataDir, MLflowTracker, Warehouse, failpoint
from mlinfra_assets.spec import DatasetSpec, class_column
from mlinfra_assets.stage import figure_or_reason as _figure
from mlinfra_assets.stage import round_figures
from mlinfra_assets.training import dataset, evaluation, figures, metrics, registry

GROUP = "training"


def build_training_set(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.TRAINING_SET,
        deps=[keys.raw_key(spec), keys.WEAK_LABELS, keys.GOLD_LABELS, keys.SYNTHETIC_ROWS, keys.SYNTHETIC_QUALITY],
        group_name=GROUP,
        kinds={"duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def training_set(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """Rows the model learns from: gold labels (one-hot), weak labels not in gold (the label
        model's soft probabilities) and synthetic rows (one-hot), each with its `_weight` from
        training.weights and its `_source`; holdout rows are never included. Columns: `_row_id`,
        the features, `_prob_<class>`, `_label`, `_weight`, `_source` (the platform's columns
        start with `_`, so a feature may be named `label`, `weight` or `source`)."""
        with warehouse.connect() as con:
            rows = dataset.build(con, spec)
            balance = dataset.class_balance(con, spec)
            version = dataset.data_version(con)
        per_source = dict(zip(balance["source"], balance["rows"].astype(int), strict=True))
        mass = {c: float(balance[f"mass_{class_column(c)}"].sum()) for c in spec.classes}
        total = sum(mass.values())
        context.log.info(f"training set {version}: {rows} rows {per_source}")

        def draw(ax) -> None:  # noqa: ANN001
            bottom = None
            for c in spec.classes:
                col = f"mass_{class_column(c)}"
                ax.bar(balance["source"], balance[col], bottom=bottom, label=c)
                bottom = balance[col] if bottom is None else bottom + balance[col]
            ax.set_ylabel("weighted soft label mass")
            ax.legend(fontsize=7)

        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                **{f"rows_{s}": per_source.get(s, 0) for s in dataset.SOURCES},
                **{f"share_{c}": mass[c] / total for c in spec.classes},
                "data_version": version,
                "class_balance": df_markdown(balance),
                "class_balance_plot": png_markdown(draw, "weighted class mass per source"),
            },
            data_version=dg.DataVersion(version),
        )

    return training_set


def build_model(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.MODEL,
        deps=[keys.TRAINING_SET, keys.raw_key(spec)],
        group_name=GROUP,
        kinds={"pytorch", "mlflow"},
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def model(
        context: dg.AssetExecutionContext, warehouse: Warehouse, data_dir: DataDir, mlflow: MLflowTracker
    ) -> dg.MaterializeResult:
        """The tabular MLP trained on the training set with a noise-aware loss (soft targets,
        source weights, class weights), logged to MLflow and registered as the spec's model with
        alias `challenger`; its MLflow pyfunc takes raw feature rows (the raw table's types).
        The value is {name, version, model_uri, run_id, path}."""
        from mlinfra_assets.training import tracking
        from mlinfra_assets.training.trainer import TrainConfig, train  # torch: inside the asset

        tracking.check_reachable(mlflow)  # before training: a model that cannot be logged is not trained
        with warehouse.connect(read_only=True) as con:
            data = dataset.load(con, spec)
            version = dataset.data_version(con)
            example = dataset.raw_example(con, spec)
            window = dataset.training_window(con, spec)
            recent = dataset.recent_rows(con, spec)
        cfg = TrainConfig.from_spec(spec)
        if cfg.epochs < 1:
            context.log.warning("training.epochs is 0: the model is the untrained network")
        imputed = {c: n for c, n in data.missing.items() if n}
        if imputed:
            context.log.warning(f"missing numerics imputed with the training mean: {imputed}")
        result = train(data, spec, cfg, log=context.log.info, recent=recent)
        folder = data_dir.path("models", context.run_id)
        result.model.save(folder)
        pos = spec.positive_index
        loss_plot = figures.draw_loss(result.history, result.selected_on, result.metric)
        cal = result.model.calibration
        curves = {"validation": (result.val_labels, result.val_probs)}
        if cal.method != "none":  # in-sample: the out-of-fold Brier scores in the metadata chose it
            curves[f"{cal.method} (fitted on these rows)"] = (result.val_labels, cal.apply(result.val_probs))
        cal_plot = figures.draw_calibration(curves)
        val_pred = result.val_probs.argmax(1)
        cm_plot = figures.draw_confusion(result.val_labels, val_pred, list(spec.classes))
        plots = {"plots/loss_curve.png": (loss_plot, "loss per epoch"),
                 "plots/validation_calibration.png": (cal_plot, "validation calibration"),
                 "plots/validation_confusion.png": (cm_plot, "validation confusion matrix")}
        if spec.n_classes == 2:  # one class's precision-recall curve says little of three or more
            val = {"validation": (result.val_labels == pos, result.val_probs[:, pos])}
            plots["plots/validation_pr_curve.png"] = (figures.draw_pr(val), "validation precision-recall")
        logged = tracking.log_training(
            mlflow, spec, result, folder, version, context.run_id, input_example=example, figures=plots,
            training_window=window,
        )
        per_class = metrics.per_class(result.val_labels, val_pred, list(spec.classes))
        value = {"name": spec.name, "version": logged.version, "model_uri": logged.model_uri,
                 "run_id": logged.run_id, "path": str(folder)}
        return dg.MaterializeResult(
            value=value,
            metadata={
                "dagster/row_count": len(data),
                "mlflow_run_id": logged.run_id,
                "mlflow_run": dg.MetadataValue.url(mlflow.run_link(logged.experiment_id, logged.run_id)),
                "registered_version": logged.version,
                "model_uri": logged.model_uri,
                "data_version": version,
                "training_window": " .. ".join(window) if window else "no real (non-synthetic) training row",
                "epochs": len(result.history),
                "best_epoch": result.best_epoch,
                "metric": result.metric,
                "selected_on": result.selected_on,
                "best_val_metric": _figure(result.best_val_metric, "undefined on the validation rows"),
                **({"best_val_f1": _figure(result.best_val_f1, "undefined: no positive validation row")}
                   if spec.n_classes == 2 else {}),
                "validation": result.validation,
                "calibration": cal.method,
                "calibration_reason": cal.reason,
                **({"calibration_brier": dg.MetadataValue.json(cal.brier)} if cal.brier else {}),
                "validation_per_class": df_markdown(per_class),
                "training_rows": result.train_rows,
                "epoch_samples": result.epoch_samples,
                **({"weak_rows_used": result.weak.used, "weak_rows_reason": result.weak.reason,
                    "choice_with_weak": _figure(result.weak.with_weak, "not compared"),
                    "choice_gold_only": _figure(result.weak.gold_only, "not compared")}
                   if result.weak else {"weak_rows_reason": "no weak rows in the training set"}),
                "seconds": round(result.seconds, 2),
                "samples_per_s": round(result.samples_per_s),
                "decision_shift": result.decision_shift,
                "decision": result.decision,
                **_recent_metadata(spec, result, recent),
                "synthetic_scale": dg.MetadataValue.json(
                    dict(zip(spec.classes, result.synthetic_scale, strict=True))),
                "imputed_values": sum(imputed.values()),
                "loss_curve": png_markdown(loss_plot, "loss per epoch"),
                "validation_confusion": png_markdown(cm_plot, "validation confusion matrix"),
            },
        )

    return model


def _recent_metadata(spec: DatasetSpec, result, recent: dataset.Recent) -> dict:  # noqa: ANN001 - a trainer.TrainResult
    """The decision on the latest scored partitions' rows: the share it flags beside the
    positive share the champion expects there (the cap's baseline), or why it was not looked at."""
    if result.recent is None:
        why = recent.where if not len(recent.rows) else f"not capped: the decision is the argmax ({spec.n_classes} classes, metric {spec.metric})"
        return {"recent_rows": why}
    r = result.recent
    return {"recent_rows": f"{r.rows:,} rows of {r.where}", "recent_expected_positive_share": r.expected_share,
            "recent_flagged_share": r.flagged_share, "recent_cap_lowered_shift_by": r.lowered_by}


def build_evaluation(spec: DatasetSpec) -> dg.AssetsDefinition:
    # the holdout's labels: the spec's gold (raw.gold), or without gold the human annotations
    labels_key = keys.GOLD if spec.gold is not None else keys.GOLD_LABELS

    @dg.asset(
        key=keys.EVALUATION,
        ins={"model": dg.AssetIn(keys.MODEL)},
        deps=[keys.raw_key(spec), labels_key],
        group_name=GROUP,
        kinds={"pytorch", "mlflow", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def evaluation_(
        context: dg.AssetExecutionContext, model: dict, warehouse: Warehouse, mlflow: MLflowTracker
    ) -> dg.MaterializeResult:
        """The new model (challenger) and the current champion scored on the frozen holdout
        (gold labels, or without gold the annotated holdout rows) on the spec's metric
        (training.metric: positive-class F1 for two classes, macro-F1 for more), beside the
        majority-class and class-prior baselines; also PR-AUC (two classes), per-class
        precision/recall/F1, accuracy, calibration error, overall and per slice. The gate moves
        alias `champion` to the challenger when it beats the majority-class baseline and there is
        no champion yet or its metric >= the champion's - training.promotion_margin; with a
        champion in place it first gets alias `shadow` and scores serving.shadow_days live
        partitions beside the champion (monitoring/shadow decides). Without any labelled holdout
        row nothing is scored: a first model becomes champion unevaluated, a champion stays."""
        from mlinfra_assets.training import tracking

        tracking.check_reachable(mlflow)
        failpoint("before_gate")  # the fault campaign kills a run between register and gate here
        holdout = warehouse.query_df(dataset.holdout_sql(spec))
        holdout_version = dataset.frame_version(holdout)
        champ_version = registry.champion_version(mlflow, spec.name)
        why_not = evaluation.not_evaluable(holdout, spec)
        if why_not is not None and spec.gold is not None:
            raise ValueError(why_not)
        if why_not is not None:
            return _not_evaluated(context, spec, model, warehouse, mlflow, holdout, holdout_version,
                                  champ_version, why_not)
        reference = evaluation.holdout_baselines(holdout, spec)
        challenger = evaluation.score(_challenger(model, mlflow), holdout, spec, reference)
        champion = None
        if champ_version == challenger.version:
            champion = challenger  # re-evaluating the champion: it keeps its place
        elif champ_version is not None:
            champion = evaluation.score(registry.load_version(mlflow, spec.name, champ_version), holdout, spec,
                                        reference)
        majority = reference["majority"]
        decision = evaluation.gate(challenger.value, champion.value if champion else None,
                                   spec.training.promotion_margin, majority, spec.metric)
        if champion is not challenger:  # a promotion with a champion in place: shadow scoring first
            decision = evaluation.through_shadow(decision, champ_version, spec.serving.shadow_days)
        context.log.info(f"gate: {decision.name} version {challenger.version} ({decision.reason})")
        rows = evaluation.evaluation_rows(challenger, champion, decision, datetime.now())
        after = challenger if decision.promote and not decision.shadow else champion
        verdict = evaluation.champion_vs_baseline(after.version if after else None,
                                                  after.value if after else float("nan"), majority, spec.metric)
        if verdict.startswith("WARNING"):
            context.log.warning(verdict)

        labels = holdout[dataset.LABEL].to_numpy()
        pos = spec.positive_index
        scored = {f"challenger v{challenger.version}": challenger}
        if champion is not None and champion is not challenger:
            scored[f"champion v{champion.version}"] = champion
        cal_plot = figures.draw_calibration({k: (labels, s.probs) for k, s in scored.items()})
        cm_plot = figures.draw_confusion(labels, challenger.probs.argmax(1), list(spec.classes))
        plots = {"evaluation/calibration.png": (cal_plot, "holdout calibration"),
                 "evaluation/confusion_matrix.png": (cm_plot, "holdout confusion matrix")}
        markdown = {}
        if spec.n_classes == 2:
            pr_plot = figures.draw_pr({k: (labels == pos, s.probs[:, pos]) for k, s in scored.items()})
            plots["evaluation/pr_curve.png"] = (pr_plot, "holdout precision-recall")
            markdown["pr_curve"] = png_markdown(pr_plot, "holdout precision-recall")
        overall = challenger.table.loc[challenger.table["slice"] == "overall", "metric"]
        headline = [m for m in ("f1", "pr_auc", "macro_f1", "accuracy", "ece") if m in set(overall)]
        figures_ = {m: challenger.overall(m) for m in headline}
        champ_figures = {m: champion.overall(m) for m in headline} if champion else {}
        base = {evaluation.baseline_metric(kind, spec.metric): v for kind, v in reference.items()}
        tracking.log_evaluation(
            mlflow, model["run_id"],
            metrics={**{f"holdout_{m}": v for m, v in {**figures_, **base}.items()},
                     **{f"champion_holdout_{m}": v for m, v in champ_figures.items()}},
            tags={"gate_decision": decision.name, "gate_reason": decision.reason, "metric": spec.metric,
                  "evaluated": "true", "champion_version": str(champ_version), "holdout_version": holdout_version},
            table=challenger.table,
            figures=plots,
        )
        with warehouse.connect() as con:
            evaluation.write(con, rows)
        # the alias moves last: a failure or a kill anywhere above leaves the champion where it
        # was (re-materializing replaces this version's rows and decides again)
        if decision.shadow:
            registry.set_alias(mlflow, spec.name, registry.SHADOW, challenger.version)
        elif decision.promote:
            registry.set_alias(mlflow, spec.name, registry.CHAMPION, challenger.version)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "evaluated": True,
                "decision": decision.name,
                "reason": decision.reason,
                "challenger_version": challenger.version,
                "champion_version_before": champ_version or "none",
                "champion_version_after": (after.version if after else None) or "none",
                "shadow_version": challenger.version if decision.shadow else "none",
                "metric": spec.metric,
                "metric_value": _figure(challenger.value, "undefined on the holdout"),
                "baseline_majority": _figure(majority, "undefined on the holdout"),
                "baseline_prior": _figure(reference["prior"], "undefined on the holdout"),
                "beats_majority": bool(challenger.value > majority),
                "champion_metric_value": _figure(after.value, "undefined on the holdout") if after else "no champion",
                "champion_beats_majority": bool(after is not None and after.value > majority),
                "champion_vs_baseline": verdict,
                **figures_,
                **{f"champion_{m}": v for m, v in champ_figures.items()},
                "holdout_rows": len(holdout),
                "holdout_version": holdout_version,
                "holdout_class_counts": dg.MetadataValue.json(
                    {c: int((labels == i).sum()) for i, c in enumerate(spec.classes)}),
                **({"holdout_positives": int((labels == pos).sum())} if spec.n_classes == 2 else {}),
                "per_class": df_markdown(evaluation.class_overview(challenger)),
                "slices": df_markdown(evaluation.slice_overview(challenger)),
                **markdown,
                "calibration": png_markdown(cal_plot, "holdout calibration"),
                "confusion_matrix": png_markdown(cm_plot, "holdout confusion matrix"),
            },
        )

    return evaluation_


def _not_evaluated(context: dg.AssetExecutionContext, spec: DatasetSpec, model: dict, warehouse: Warehouse,
                   mlflow: MLflowTracker, holdout, holdout_version: str, champ_version: str | None,  # noqa: ANN001
                   why: str) -> dg.MaterializeResult:
    """The gate without holdout figures: no champion -> this model becomes champion, else it stays."""
    from mlinfra_assets.training import tracking

    decision = evaluation.gate_not_evaluated(champ_version, why)
    context.log.warning(f"gate: {decision.name} version {model['version']} ({decision.reason})")
    rows = evaluation.not_evaluated_rows(str(model["version"]), champ_version, decision, datetime.now(),
                                         len(holdout))
    tracking.log_evaluation(
        mlflow, model["run_id"], metrics={},
        tags={"gate_decision": decision.name, "gate_reason": decision.reason, "metric": spec.metric,
              "evaluated": "false", "champion_version": str(champ_version), "holdout_version": holdout_version},
        table=rows, figures={},
    )
    with warehouse.connect() as con:
        evaluation.write(con, rows)
    if decision.promote:
        registry.set_alias(mlflow, spec.name, registry.CHAMPION, str(model["version"]))
    missing = why.split(";")[0]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "evaluated": False,
            "decision": decision.name,
            "reason": decision.reason,
            "challenger_version": str(model["version"]),
            "champion_version_before": champ_version or "none",
            "champion_version_after": str(model["version"]) if decision.promote else champ_version,
            "metric": spec.metric,
            "metric_value": missing,
            "baseline_majority": missing,
            "baseline_prior": missing,
            "beats_majority": missing,
            "champion_metric_value": missing,
            "champion_beats_majority": missing,
            "champion_vs_baseline": missing,
            "holdout_rows": len(holdout),
            "holdout_version": holdout_version,
        },
    )


def _challenger(model: dict, mlflow: MLflowTracker):  # noqa: ANN202 - a ScoringModel
    """The model handed over by training/model: its local folder, or the registry's copy."""
    from mlinfra_assets.training.model import ScoringModel

    path = Path(model["path"])
    if path.exists():
        return ScoringModel.load(path, version=model["version"])
    return registry.load_version(mlflow, model["name"], model["version"])
