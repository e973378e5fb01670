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
_VERSION = re.compile(r"^[A-Za-z0-9._-]+$")


def holdout_sql(spec: DatasetSpec) -> str:
    """Raw holdout rows with their gold label in `_gold_label` (identifiers from the spec)."""
    return (SQL / "holdout_rows.sql").read_text().format(
        raw_table=spec.raw_table,
        id_column=spec.id_column,
        gold_sql=gold_from(spec),
        holdout=holdout_predicate(spec, f"r.{spec.id_column}"),
    )


def build_compressed_models(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.COMPRESSED_MODELS,
        ins={"model": dg.AssetIn(key=keys.MODEL)},
        group_name="edge",
        kinds={"pytorch", "onnx", "triton"},
    )
    def compressed_models(context: dg.AssetExecutionContext, model: dict, data_dir: DataDir):
        """Edge variants of the trained model, one file each, under models/edge/<version>/:
        fp32, dynamic int8 (torch), int8 weight-only (Triton kernel on CUDA, torch on CPU)
        and ONNX fp32 (numeric + categorical -> probabilities, dynamic batch), with the
        preprocessing JSON. The value is a dict: version, folder, parity, variant -> file."""
        from mlinfra_assets.edge.compress import build_variants, onnx_parity
        from mlinfra_assets.training.model import ScoringModel

        version = str(model.get("version", ""))
        if not _VERSION.match(version):
            raise ValueError(f"training/model version {version!r} is not a plain name usable as a folder")
        source = Path(model["path"])
        if not (source / "model.pt").exists():
            raise FileNotFoundError(f"training/model path {source} holds no model.pt: re-materialize training/model")
        scoring = ScoringModel.load(source, version=version)
        folder = data_dir.path("models", "edge", version, mkdir=False)
        variants = build_variants(scoring, folder)
        parity = onnx_parity(variants, scoring.pre)
        context.log.info(f"edge variants of {spec.name} v{version} in {folder}; ONNX parity {parity:.2e}")
        files = pd.DataFrame([v.to_dict() for v in variants.values()]).drop(columns="path")
        fp32_size = variants["fp32"].size_bytes
        return dg.MaterializeResult(
            value={
                "name": model.get("name", spec.name),
                "version": version,
                "model_uri": model.get("model_uri"),
                "folder": str(folder),
                "onnx_parity_max_abs_diff": parity,
                "variants": {n: v.to_dict() for n, v in variants.items()},
            },
            metadata={
                "dagster/row_count": len(variants),
                "model_version": version,
                "folder": dg.MetadataValue.path(str(folder)),
                "variants": df_markdown(files),
                "fp32_size_bytes": fp32_size,
                "dynamic_int8_size_ratio": variants["dynamic_int8"].size_bytes / fp32_size,
                "int8_weight_only_size_ratio": variants["int8_weight_only"].size_bytes / fp32_size,
                "onnx_parity_max_abs_diff": parity,
            },
        )

    return compressed_models


def _tradeoff(report: pd.DataFrame, x: str, xlabel: str):  # noqa: ANN202 - a drawing callback
    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        for i, row in enumerate(report.itertuples()):
            ax.scatter(getattr(row, x), row.f1, s=60, color="tab:green" if row.deployable else "tab:red")
            ax.annotate(row.variant, (getattr(row, x), row.f1), textcoords="offset points",
                        xytext=(5, 5 - 14 * (i % 2)), fontsize=8)  # alternate so equal points stay readable
        ax.margins(x=0.25, y=0.15)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("holdout F1 (green: deployable)")
        ax.grid(alpha=0.3)

    return draw


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
        """Per edge variant: file size, stored tensor elements, one-thread CPU latency (p50/p99 at
        batch 1 and 1024), F1 and PR-AUC on the frozen holdout (gold labels), the F1 change
        vs fp32, the max probability difference vs fp32 and whether it is deployable
        (F1 drop <= edge.f1_margin; ONNX also within 1e-4 of torch)."""
        from mlinfra_assets.edge.compress import Variant
        from mlinfra_assets.edge.evaluate import evaluate_variants
        from mlinfra_assets.training.model import Preprocessor

        folder = Path(compressed_models["folder"])
        pre = Preprocessor.from_json((folder / "preprocessor.json").read_text())
        rows = warehouse.query_df(holdout_sql(spec))
        if rows.empty:
            raise ValueError(f"no holdout rows with gold labels in {spec.raw_table}: materialize raw and {spec.gold.table}")
        labels = rows["_gold_label"].to_numpy(dtype="int64")
        num, cat = pre.encode(rows)
        variants = {n: Variant(**v) for n, v in compressed_models["variants"].items()}
        report = evaluate_variants(variants, num, cat, labels, spec.positive_index, spec.edge.f1_margin)
        report.insert(1, "model_version", str(compressed_models["version"]))
        with warehouse.connect() as con:
            count = replace_table_from_df(con, REPORT_TABLE, report)
        by = report.set_index("variant")
        shown = report.drop(columns=["path", "model_version"])
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": count,
                "model_version": str(compressed_models["version"]),
                "holdout_rows": len(rows),
                "holdout_positives": int(np.sum(labels == spec.positive_index)),
                "fp32_f1": float(by.loc["fp32", "f1"]),
                "dynamic_int8_f1_delta": float(by.loc["dynamic_int8", "f1_delta"]),
                "int8_weight_only_f1_delta": float(by.loc["int8_weight_only", "f1_delta"]),
                "onnx_max_abs_diff": float(by.loc["onnx_fp32", "max_abs_diff_vs_fp32"]),
                "deployable_variants": int(report["deployable"].sum()),
                "report": df_markdown(shown),
                "size_vs_f1": png_markdown(_tradeoff(report, "size_bytes", "file size (bytes)"), "Size vs F1"),
                "latency_vs_f1": png_markdown(
                    _tradeoff(report, "latency_b1024_p50_ms", "p50 latency, batch 1024, 1 thread (ms)"),
                    "Latency vs F1",
                ),
            },
        )

    return compression_report
