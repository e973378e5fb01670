"""Edge assets: compressed variants of the trained model, and their size/latency/accuracy report."""

import re
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.holdout import evaluation_labels, holdout_predicate
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import DataDir, MLflowTracker, Warehouse, replace_table_from_df
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import round_figures

SQL = Path(__file__).parent / "sql"
REPORT_TABLE = "edge.compression_report"
TRAINING_SET = "training.training_set"
_VERSION = re.compile(r"^[A-Za-z0-9._-]+$")
UNLABELLED_ROWS = 2000  # holdout rows timed when none is labelled
FIGURE_NAMES = {"f1": "F1", "macro_f1": "macro-F1", "accuracy": "accuracy"}
VARIANTS_CHECK = "edge_variants_built"
CHECK_KEY = dg.AssetCheckKey(keys.COMPRESSED_MODELS, VARIANTS_CHECK)


def variants_check(skipped: dict[str, str], failed: dict[str, str]) -> dg.AssetCheckResult:
    """`edge_variants_built`: fails (ERROR) when a variant failed for an unexpected reason;
    variants the model cannot take (skipped, with the reason) do not fail it."""
    lines = [f"{n} failed: {r}" for n, r in failed.items()] + [f"{n} skipped: {r}" for n, r in skipped.items()]
    if failed:
        head = (f"{len(failed)} edge variant(s) failed unexpectedly ({', '.join(failed)}): the run's log "
                "holds the traceback; the other variants were built")
    else:
        head = "every variant built" + (" except those the model cannot take" if skipped else "")
    return dg.AssetCheckResult(
        check_name=VARIANTS_CHECK,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="\n".join([head, *lines]),
        metadata={"failed_variants": len(failed), "skipped_variants": len(skipped)},
    )


def _number(value: float) -> float | str:
    """A figure for metadata, or why it is missing (never a silent 0)."""
    return "not judged: no labelled holdout rows" if pd.isna(value) else float(value)


def holdout_sql(spec: DatasetSpec) -> str:
    """Raw holdout rows with their label in `_gold_label` (identifiers from the spec): the
    spec's gold labels, or without gold the human annotations (`holdout.evaluation_labels`)."""
    return (SQL / "holdout_rows.sql").read_text().format(
        raw_table=spec.raw_table,
        id_column=spec.id_column,
        labels_sql=evaluation_labels(spec),
        holdout=holdout_predicate(spec, f"r.{spec.id_column}"),
        last_class=str(spec.n_classes - 1),
    )


def unlabelled_holdout_sql(spec: DatasetSpec) -> str:
    """Raw holdout rows without labels (one ? parameter: the row count), to time the variants."""
    return (SQL / "unlabelled_holdout_rows.sql").read_text().format(
        raw_table=spec.raw_table, id_column=spec.id_column, holdout=holdout_predicate(spec, f"r.{spec.id_column}"))


def positive_name(spec: DatasetSpec) -> str | None:
    """The positive class for two classes (its decision is realigned after pruning and named
    in the edge file); None for three or more (no class's decision is shifted)."""
    return spec.classes[spec.positive_index] if spec.n_classes == 2 else None


def load_champion(spec: DatasetSpec, mlflow: MLflowTracker):  # noqa: ANN201 - a ScoringModel
    """The model the gate left as champion (registry alias `champion`), never a rejected challenger.

    Raises
    ------
    LookupError
        when there is no champion yet (the gate has refused every model so far).
    """
    from mlinfra_assets.training import registry

    version = registry.champion_version(mlflow, spec.name)
    if version is None:
        raise LookupError(
            f"registered model {spec.name!r} has no champion in {mlflow.tracking_uri}: the gate "
            "(training/evaluation) has promoted no model yet (its metadata says why); edge variants "
            "are built from the champion only"
        )
    return registry.load_version(mlflow, spec.name, version)


def finetune_rows(spec: DatasetSpec, warehouse: Warehouse) -> pd.DataFrame | None:
    """Up to `edge.finetune_rows` rows of training.training_set (None when the table is missing)."""
    schema, table = TRAINING_SET.split(".")
    present = warehouse.query_df(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    )
    if int(present["n"].iloc[0]) == 0:
        return None
    return warehouse.query_df((SQL / "finetune_rows.sql").read_text(), [spec.edge.finetune_rows])


def build_compressed_models(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.COMPRESSED_MODELS,
        # after monitoring/shadow where a run holds both (full_pipeline): a shadow period that ends
        # in the run promotes its champion first, and the variants are built from that champion
        deps=[keys.EVALUATION, keys.TRAINING_SET, keys.SHADOW],
        group_name="edge",
        kinds={"pytorch", "onnx", "triton"},
        pool=keys.WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                VARIANTS_CHECK,
                asset=keys.COMPRESSED_MODELS,
                blocking=False,  # the report still measures the variants that were built
                description="Fails (ERROR) when an edge variant failed for an unexpected reason (a bug, "
                "not a layer or op the variant cannot take, which is a skip with its reason).",
            )
        ],
    )
    @round_figures
    def compressed_models(context: dg.AssetExecutionContext, data_dir: DataDir, warehouse: Warehouse,
                          mlflow: MLflowTracker):
        """Edge variants of the champion, the model the gate (training/evaluation) left with
        alias `champion` in the MLflow registry (never a rejected challenger), one file each,
        under models/edge/<champion version>/:
        fp32, dynamic int8 (torch), int8 weight-only (Triton kernel on CUDA, torch on CPU),
        magnitude-pruned at each edge.prune_amounts (fine-tuned on training.training_set),
        ONNX fp32 and onnxruntime int8 (encoded inputs), and the edge deliverable
        `edge_model.onnx` (raw columns -> probabilities, preprocessing inside) with the
        standalone `score.py` (numpy + onnxruntime). A variant the model cannot take is
        skipped with its reason; one that fails for any other reason is `failed` and fails the
        check edge_variants_built. The folder is a link switched atomically to a complete build
        (models/edge/<version>.builds/). The value: version (the champion's), folder, variants,
        skipped, failed."""
        from mlinfra_assets.edge.compress import EDGE_FILE, build_variants
        from mlinfra_assets.edge.prune import FinetuneSet
        from mlinfra_assets.training import registry
        from mlinfra_assets.training.batches import target_columns

        scoring = load_champion(spec, mlflow)
        version = str(scoring.version)
        if not _VERSION.match(version):
            raise ValueError(f"champion version {version!r} is not a plain name usable as a folder")
        challenger = registry.alias_version(mlflow, spec.name, registry.CHALLENGER)
        if challenger is not None and challenger != version:
            context.log.info(f"edge variants built from the champion, version {version} (the gate kept it "
                             f"over challenger version {challenger})")
        rows = finetune_rows(spec, warehouse)
        finetune = None if rows is None else FinetuneSet.from_frame(rows, scoring.pre, target_columns(spec))
        folder = data_dir.path("models", "edge", version, mkdir=False)
        variants, skipped, failed = build_variants(scoring, folder, spec.edge, finetune, positive_name(spec))
        for name, reason in skipped.items():
            context.log.warning(f"edge variant {name} skipped: {reason}")
        for name, reason in failed.items():
            context.log.error(f"edge variant {name} failed: {reason}")
        files = pd.DataFrame([v.to_dict() for v in variants.values()]).drop(columns="path")
        fp32_size = variants["fp32"].size_bytes
        return dg.MaterializeResult(
            value={
                "name": spec.name,
                "version": version,
                "model_uri": f"models:/{spec.name}/{version}",
                "folder": str(folder),
                "variants": {n: v.to_dict() for n, v in variants.items()},
                "skipped": skipped,
                "failed": failed,
            },
            metadata={
                "dagster/row_count": len(variants),
                "model_version": version,
                "built_from": "champion",
                "challenger_version": challenger or "none",
                "folder": dg.MetadataValue.path(str(folder)),
                "edge_file": dg.MetadataValue.path(str(folder / EDGE_FILE)),
                "variants": df_markdown(files),
                "skipped": df_markdown(pd.DataFrame({"variant": list(skipped), "reason": list(skipped.values())})),
                "failed": df_markdown(pd.DataFrame({"variant": list(failed), "error": list(failed.values())})),
                "finetune_rows": 0 if finetune is None else len(finetune),
                "fp32_size_bytes": fp32_size,
                **{f"{n}_size_ratio": fp32_size / v.size_bytes for n, v in variants.items() if n != "fp32"},
            },
            # the check's result only where the run selected the check (a run of the asset alone may not)
            check_results=[variants_check(skipped, failed)] if CHECK_KEY in context.selected_asset_check_keys else [],
        )

    return compressed_models


def build_compression_report(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.COMPRESSION_REPORT,
        ins={"compressed_models": dg.AssetIn(key=keys.COMPRESSED_MODELS)},
        deps=[keys.raw_key(spec), keys.GOLD if spec.gold is not None else keys.GOLD_LABELS],
        group_name="edge",
        kinds={"duckdb", "pytorch", "onnx"},
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def compression_report(context: dg.AssetExecutionContext, compressed_models: dict, warehouse: Warehouse,
                           mlflow: MLflowTracker):
        """Per edge variant of the champion: status (ok / skipped / failed, with the reason), file size
        (and gzipped), size ratio vs fp32, stored tensor elements, weight sparsity, one-thread CPU
        latency (p50/p99 at batch 1 and 1024) and speed-up vs fp32, the spec's metric
        (`metric_value`; training.metric) on the frozen holdout (gold labels, or without gold the
        annotated holdout rows) and its change vs fp32 (the champion itself), F1 and PR-AUC of the
        positive class (two classes), the max probability difference vs fp32, and whether it is
        deployable (metric drop <= edge.f1_margin; the exact ONNX files also within 1e-4 of
        torch); `reason` says why not. Without labelled holdout rows only size and latency are
        measured, and the metric columns say nothing (deployable: not judged). Each deployable
        variant that loads as a portable MLflow model (edge_onnx, the pruned ones) is registered
        as a version of the spec's model with alias `champion-<variant>`; the alias of a variant
        not deployable for this champion is removed (edge/registration.py)."""
        from mlinfra_assets.edge import figures
        from mlinfra_assets.edge.compress import Variant
        from mlinfra_assets.edge.edge_onnx import raw_inputs
        from mlinfra_assets.edge.evaluate import evaluate_variants
        from mlinfra_assets.edge.registration import register_variants
        from mlinfra_assets.training.dataset import raw_example
        from mlinfra_assets.training.model import Preprocessor

        folder = Path(compressed_models["folder"])
        pre = Preprocessor.from_json((folder / "preprocessor.json").read_text())
        rows = warehouse.query_df(holdout_sql(spec))
        labels = rows["_gold_label"].to_numpy(dtype="int64")
        if rows.empty and spec.gold is not None:
            raise ValueError(f"no holdout rows with gold labels in {spec.raw_table}: materialize raw and "
                             f"{keys.GOLD_TABLE} (the spec's gold section)")
        if rows.empty:  # no gold and no annotated holdout row yet: time the variants, judge none
            rows, labels = warehouse.query_df(unlabelled_holdout_sql(spec), [UNLABELLED_ROWS]), None
            context.log.warning("no labelled holdout rows: the variants are timed but not scored "
                                "(annotate the queue: mlinfra label)")
        num, cat = pre.encode(rows)
        inputs = {"encoded": {"numeric": num, "categorical": cat}, "raw": raw_inputs(rows, pre)}
        variants = {n: Variant(**v) for n, v in compressed_models["variants"].items()}
        report = evaluate_variants(variants, inputs, labels, spec.positive_index, spec.edge.f1_margin,
                                   compressed_models.get("skipped", {}), metric=spec.metric,
                                   failed=compressed_models.get("failed", {}))
        report.insert(1, "model_version", str(compressed_models["version"]))
        with warehouse.connect() as con:
            count = replace_table_from_df(con, REPORT_TABLE, report)
            example = raw_example(con, spec)
        registered = register_variants(mlflow, spec, str(compressed_models["version"]), folder, report, example)
        for row in registered.itertuples(index=False):
            if row.version is not None:
                context.log.info(f"{row.alias} -> version {row.version} ({row.registered})")
        ok = report[report["status"] == "ok"].set_index("variant")
        deltas = ("metric_delta", "f1_delta") if spec.n_classes == 2 else ("metric_delta",)
        figures_ = {f"{n}_{col}": _number(ok.loc[n, col]) for n in ok.index if n != "fp32"
                    for col in (*deltas, "size_ratio", "speedup_b1024")}
        name = FIGURE_NAMES.get(spec.metric, spec.metric)
        scored = {"holdout_class_counts": dg.MetadataValue.json(
            {c: int((labels == i).sum()) for i, c in enumerate(spec.classes)})} if labels is not None else {}
        if labels is not None and spec.n_classes == 2:
            scored |= {"holdout_positives": int(np.sum(labels == spec.positive_index)),
                       "fp32_f1": float(ok.loc["fp32", "f1"])}
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": count,
                "model_version": str(compressed_models["version"]),
                "metric": spec.metric,
                "holdout_rows": len(rows),
                "holdout_labelled": labels is not None,
                **scored,
                "fp32_metric_value": _number(ok.loc["fp32", "metric_value"]),
                **figures_,
                "deployable_variants": int(report["deployable"].sum()),
                "registered_variants": df_markdown(registered),
                "skipped_variants": int((report["status"] == "skipped").sum()),
                "failed_variants": int((report["status"] == "failed").sum()),
                "report": df_markdown(report.drop(columns=["path", "model_version"])),
                "size_vs_metric": png_markdown(
                    figures.tradeoff(report, "size_bytes", "file size (bytes, log)", name), f"Size vs {name}"),
                "latency_vs_metric": png_markdown(
                    figures.tradeoff(report, "latency_b1024_p50_ms", "p50 latency, batch 1024, 1 thread (ms, log)",
                                     name),
                    f"Latency vs {name}",
                ),
                "size_vs_speed": png_markdown(figures.gains(report), "Smaller and faster than fp32?"),
            },
        )

    return compression_report
