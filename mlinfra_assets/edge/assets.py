"""Edge assets: compressed variants of the trained model, and their size/latency/accuracy report."""

import re
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.holdout import gold_from, holdout_predicate
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import DataDir, Warehouse, replace_table_from_df
from mlinfra_assets.spec import DatasetSpec

SQL = Path(__file__).parent / "sql"
REPORT_TABLE = "edge.compression_report"
TRAINING_SET = "training.training_set"
_VERSION = re.compile(r"^[A-Za-z0-9._-]+$")


def holdout_sql(spec: DatasetSpec) -> str:
    """Raw holdout rows with their gold label in `_gold_label` (identifiers from the spec)."""
    return (SQL / "holdout_rows.sql").read_text().format(
        raw_table=spec.raw_table,
        id_column=spec.id_column,
        gold_sql=gold_from(spec),
        holdout=holdout_predicate(spec, f"r.{spec.id_column}"),
    )


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
        ins={"model": dg.AssetIn(key=keys.MODEL)},
        deps=[keys.TRAINING_SET],
        group_name="edge",
        kinds={"pytorch", "onnx", "triton"},
        pool=keys.WAREHOUSE_POOL,
    )
    def compressed_models(context: dg.AssetExecutionContext, model: dict, data_dir: DataDir, warehouse: Warehouse):
        """Edge variants of the trained model, one file each, under models/edge/<version>/:
        fp32, dynamic int8 (torch), int8 weight-only (Triton kernel on CUDA, torch on CPU),
        magnitude-pruned at each edge.prune_amounts (fine-tuned on training.training_set),
        ONNX fp32 and onnxruntime int8 (encoded inputs), and the edge deliverable
        `edge_model.onnx` (raw columns -> probabilities, preprocessing inside) with the
        standalone `score.py` (numpy + onnxruntime). A variant the model cannot take is
        skipped with its reason. The value: version, folder, variants, skipped."""
        from mlinfra_assets.edge.compress import EDGE_FILE, build_variants
        from mlinfra_assets.edge.prune import FinetuneSet
        from mlinfra_assets.training.model import ScoringModel

        version = str(model.get("version", ""))
        if not _VERSION.match(version):
            raise ValueError(f"training/model version {version!r} is not a plain name usable as a folder")
        source = Path(model["path"])
        if not (source / "model.pt").exists():
            raise FileNotFoundError(f"training/model path {source} holds no model.pt: re-materialize training/model")
        scoring = ScoringModel.load(source, version=version)
        rows = finetune_rows(spec, warehouse)
        finetune = None if rows is None else FinetuneSet.from_frame(rows, scoring.pre, spec.prob_columns)
        folder = data_dir.path("models", "edge", version, mkdir=False)
        variants, skipped = build_variants(scoring, folder, spec.edge, finetune, spec.positive_class)
        for name, reason in skipped.items():
            context.log.warning(f"edge variant {name} skipped: {reason}")
        files = pd.DataFrame([v.to_dict() for v in variants.values()]).drop(columns="path")
        fp32_size = variants["fp32"].size_bytes
        return dg.MaterializeResult(
            value={
                "name": model.get("name", spec.name),
                "version": version,
                "model_uri": model.get("model_uri"),
                "folder": str(folder),
                "variants": {n: v.to_dict() for n, v in variants.items()},
                "skipped": skipped,
            },
            metadata={
                "dagster/row_count": len(variants),
                "model_version": version,
                "folder": dg.MetadataValue.path(str(folder)),
                "edge_file": dg.MetadataValue.path(str(folder / EDGE_FILE)),
                "variants": df_markdown(files),
                "skipped": df_markdown(pd.DataFrame({"variant": list(skipped), "reason": list(skipped.values())})),
                "finetune_rows": 0 if finetune is None else len(finetune),
                "fp32_size_bytes": fp32_size,
                **{f"{n}_size_ratio": fp32_size / v.size_bytes for n, v in variants.items() if n != "fp32"},
            },
        )

    return compressed_models


def build_compression_report(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.COMPRESSION_REPORT,
        ins={"compressed_models": dg.AssetIn(key=keys.COMPRESSED_MODELS)},
        deps=[keys.raw_key(spec), *([dg.AssetKey(spec.gold.table.split("."))] if spec.gold else [])],
        group_name="edge",
        kinds={"duckdb", "pytorch", "onnx"},
        pool=keys.WAREHOUSE_POOL,
    )
    def compression_report(context: dg.AssetExecutionContext, compressed_models: dict, warehouse: Warehouse):
        """Per edge variant: status (ok / skipped, with the reason), file size (and gzipped),
        size ratio vs fp32, stored tensor elements, weight sparsity, one-thread CPU latency
        (p50/p99 at batch 1 and 1024) and speed-up vs fp32, F1 and PR-AUC on the frozen holdout
        (gold labels) and their change vs fp32, the max probability difference vs fp32, and
        whether it is deployable (F1 drop <= edge.f1_margin; the exact ONNX files also within
        1e-4 of torch); `reason` says why not."""
        from mlinfra_assets.edge import figures
        from mlinfra_assets.edge.compress import Variant
        from mlinfra_assets.edge.edge_onnx import raw_inputs
        from mlinfra_assets.edge.evaluate import evaluate_variants
        from mlinfra_assets.training.model import Preprocessor

        folder = Path(compressed_models["folder"])
        pre = Preprocessor.from_json((folder / "preprocessor.json").read_text())
        rows = warehouse.query_df(holdout_sql(spec))
        if rows.empty:
            raise ValueError(f"no holdout rows with gold labels in {spec.raw_table}: materialize raw and {spec.gold.table}")
        labels = rows["_gold_label"].to_numpy(dtype="int64")
        num, cat = pre.encode(rows)
        inputs = {"encoded": {"numeric": num, "categorical": cat}, "raw": raw_inputs(rows, pre)}
        variants = {n: Variant(**v) for n, v in compressed_models["variants"].items()}
        report = evaluate_variants(variants, inputs, labels, spec.positive_index, spec.edge.f1_margin,
                                   compressed_models.get("skipped", {}))
        report.insert(1, "model_version", str(compressed_models["version"]))
        with warehouse.connect() as con:
            count = replace_table_from_df(con, REPORT_TABLE, report)
        ok = report[report["status"] == "ok"].set_index("variant")
        figures_ = {f"{n}_{col}": float(ok.loc[n, col]) for n in ok.index if n != "fp32"
                    for col in ("f1_delta", "size_ratio", "speedup_b1024")}
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": count,
                "model_version": str(compressed_models["version"]),
                "holdout_rows": len(rows),
                "holdout_positives": int(np.sum(labels == spec.positive_index)),
                "fp32_f1": float(ok.loc["fp32", "f1"]),
                **figures_,
                "deployable_variants": int(report["deployable"].sum()),
                "skipped_variants": int((report["status"] == "skipped").sum()),
                "report": df_markdown(report.drop(columns=["path", "model_version"])),
                "size_vs_f1": png_markdown(figures.tradeoff(report, "size_bytes", "file size (bytes, log)"),
                                           "Size vs F1"),
                "latency_vs_f1": png_markdown(
                    figures.tradeoff(report, "latency_b1024_p50_ms", "p50 latency, batch 1024, 1 thread (ms, log)"),
                    "Latency vs F1",
                ),
                "size_vs_speed": png_markdown(figures.gains(report), "Smaller and faster than fp32?"),
            },
        )

    return compression_report
