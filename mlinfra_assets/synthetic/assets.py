"""Synthetic assets: the SDV synthesizer, rebalancing rows, and their quality gate."""

import os
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.plots import df_markdown
from mlinfra_assets.resources import DataDir, Warehouse, replace_table
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.synthetic import data, figures
from mlinfra_assets.synthetic.quality import QUALITY_ROWS, evaluate
from mlinfra_assets.synthetic.sampling import rebalance_plan, sample_batches, stage_batches
from mlinfra_assets.synthetic.synthesizer import fit_or_reuse, load

QUALITY_CHECK = "synthetic_quality_gate"
QUALITY_TABLE = "synthetic.synthetic_quality"
SYNTHESIZER_IN = {"synthesizer": dg.AssetIn(key=keys.SYNTHESIZER)}
SCORES_SELECT = (
    "SELECT metric, property, column_name::VARCHAR AS column_name, score::DOUBLE AS score "
    "FROM _quality_scores"
)


def fit_rows_path(model_path: str | Path) -> Path:
    """The parquet file of the rows a saved synthesizer was fit on."""
    return Path(model_path).with_suffix(".fit.parquet")


def build_synthesizer(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.SYNTHESIZER,
        deps=[keys.WEAK_LABELS, keys.GOLD_LABELS, keys.raw_key(spec)],
        group_name="synthetic",
        kinds={"sdv", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    def synthesizer(context: dg.AssetExecutionContext, warehouse: Warehouse, data_dir: DataDir):
        """SDV GaussianCopula synthesizer fit on labeled real rows outside the holdout (gold label
        where annotated, else the weak label), stratified so minority classes are well represented.
        The file is versioned by a hash of its fit rows and reused while they do not change."""
        with warehouse.connect(read_only=True) as con:
            counts = data.class_counts(con, spec)
            quotas = data.fit_quotas(counts, spec.synthetic.fit_rows, spec.synthetic.target_share)
            frame = data.stratified_frame(con, spec, quotas, data.FIT_SALT).drop(columns=["row_id"])
        folder = data_dir.path("models", "synthesizer", mkdir=False)
        fit = fit_or_reuse(frame, spec, folder)
        rows_path = fit_rows_path(fit.path)
        if not rows_path.exists():
            partial = rows_path.with_suffix(".partial")
            frame.to_parquet(partial, index=False)
            os.replace(partial, rows_path)
        context.log.info(f"synthesizer {fit.version}: {'reused' if fit.reused else 'fit'} on {fit.rows} rows")
        per_class = frame[data.LABEL].value_counts()
        table = pd.DataFrame(
            {
                "class": spec.classes,
                "labeled_rows": [counts[i] for i in range(spec.n_classes)],
                "fit_rows": [int(per_class.get(c, 0)) for c in spec.classes],
            }
        )
        return dg.MaterializeResult(
            value={"path": str(fit.path), "version": fit.version, "rows": fit.rows},
            data_version=dg.DataVersion(fit.version),
            metadata={
                "dagster/row_count": fit.rows,
                "version": fit.version,
                "model_path": dg.MetadataValue.path(str(fit.path)),
                "reused": fit.reused,
                "refit": not fit.reused,
                "fit_seconds": round(fit.seconds, 3),
                **{f"fit_rows_{c}": int(per_class.get(c, 0)) for c in spec.classes},
                "classes": df_markdown(table),
                "sdtypes": df_markdown(pd.DataFrame(list(fit.sdtypes.items()), columns=["column", "sdtype"])),
                "class_counts": figures.class_bars(table, ["labeled_rows", "fit_rows"], "Labeled vs fit rows"),
            },
        )

    return synthesizer


def build_synthetic_rows(spec: DatasetSpec) -> dg.AssetsDefinition:
    target = spec.synthetic.target_share

    @dg.asset(
        key=keys.SYNTHETIC_ROWS,
        ins=SYNTHESIZER_IN,
        group_name="synthetic",
        kinds={"sdv", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    def synthetic_rows(context: dg.AssetExecutionContext, synthesizer: dict, warehouse: Warehouse, data_dir: DataDir):
        """Synthetic rows of every class under synthetic.target_share of the labeled rows, sampled
        conditionally on the label until the class reaches the target share of real + synthetic.
        No row equals a real row on all features; `synthesizer_version` names the model."""
        version = synthesizer["version"]
        with warehouse.connect(read_only=True) as con:
            counts = data.class_counts(con, spec)
        plan = rebalance_plan(counts, target)
        model = load(synthesizer["path"])
        staging = data_dir.path("tmp", "synthetic", mkdir=False)
        staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=staging) as tmp:
            files, sampled = stage_batches(sample_batches(model, spec, plan), Path(tmp), version)
            with warehouse.connect() as con:
                if files:
                    rows = replace_table(con, data.ROWS_TABLE, data.synthetic_rows_sql(spec), [files])
                else:
                    rows = replace_table(con, data.ROWS_TABLE, data.empty_rows_sql(spec))
                written = dict(con.execute(f"SELECT label, count(*) FROM {data.ROWS_TABLE} GROUP BY label").fetchall())
        real, synthetic = sum(counts.values()), sum(written.values())
        table = pd.DataFrame(
            {
                "class": spec.classes,
                "real": [counts[i] for i in range(spec.n_classes)],
                "synthetic": [int(written.get(i, 0)) for i in range(spec.n_classes)],
            }
        )
        table["share_before"] = table["real"] / real
        table["share_after"] = (table["real"] + table["synthetic"]) / (real + synthetic)
        context.log.info(f"{rows} synthetic rows for {[spec.classes[c] for c in plan]} (target {target:.0%})")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "synthesizer_version": version,
                "target_share": target,
                "dropped_exact_copies": sum(sampled.values()) - rows,
                **{f"rows_{c}": int(n) for c, n in zip(table["class"], table["synthetic"], strict=True)},
                **{f"share_after_{c}": float(s) for c, s in zip(table["class"], table["share_after"], strict=True)},
                "classes": df_markdown(table),
                "shares": figures.class_bars(table, ["share_before", "share_after"], "Class shares", hline=target),
            }
        )

    return synthetic_rows


def build_synthetic_quality(spec: DatasetSpec) -> dg.AssetsDefinition:
    threshold = spec.synthetic.quality_threshold

    @dg.asset(
        key=keys.SYNTHETIC_QUALITY,
        ins=SYNTHESIZER_IN,
        deps=[keys.SYNTHETIC_ROWS],
        group_name="synthetic",
        kinds={"sdv", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                QUALITY_CHECK,
                asset=keys.SYNTHETIC_QUALITY,
                blocking=True,
                description="Blocks training on synthetic rows whose SDV overall quality is under "
                "synthetic.quality_threshold, whose diagnostic validity is under 100%, or that "
                "copy a real row exactly.",
            )
        ],
    )
    def synthetic_quality(context: dg.AssetExecutionContext, synthesizer: dict, warehouse: Warehouse):
        """SDV quality (column shapes, column pair trends) of the synthetic rows against real rows
        of the same class mix, SDV diagnostic (validity, structure) against the fit rows, and the
        count of synthetic rows identical to a real row: one score per metric/property/column."""
        with warehouse.connect(read_only=True) as con:
            synthetic, real, versions, exact = data.quality_frames(con, spec, QUALITY_ROWS)
        if versions and versions != [synthesizer["version"]]:
            raise ValueError(
                f"{data.ROWS_TABLE} was sampled by synthesizer {versions}, not the current "
                f"{synthesizer['version']}: re-materialize synthetic/synthetic_rows"
            )
        if synthetic.empty:  # no class under the target share: nothing was sampled, nothing to judge
            result, problems = None, []
            scores = pd.DataFrame([{"metric": "summary", "property": "Synthetic Rows", "column_name": None, "score": 0.0}])
        else:
            reference = pd.read_parquet(fit_rows_path(synthesizer["path"]))
            metadata = load(synthesizer["path"]).get_metadata()
            result = evaluate(real, synthetic, reference, metadata, exact)
            problems, scores = result.problems(threshold), result.scores
        with warehouse.connect() as con:
            con.register("_quality_scores", scores)
            rows = replace_table(con, QUALITY_TABLE, SCORES_SELECT)
            con.unregister("_quality_scores")
        figures_md = {} if result is None else {
            "overall_quality": result.overall,
            "data_validity": result.validity,
            "column_shapes": result.property_score("quality", "Column Shapes"),
            "column_pair_trends": result.property_score("quality", "Column Pair Trends"),
            "data_structure": result.property_score("diagnostic", "Data Structure"),
            "per_column": df_markdown(result.per_column),
            "per_column_plot": figures.column_scores(result.per_column, threshold),
        }
        description = "; ".join(problems) or (
            "no synthetic rows: nothing to check" if result is None else "quality, validity and privacy met"
        )
        context.log.info(f"synthetic quality: {description}")
        figures_md.update({"exact_matches": exact, "quality_threshold": threshold})
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "synthetic_rows_compared": len(synthetic),
                "real_rows_compared": len(real),
                **figures_md,
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=QUALITY_CHECK,
                    passed=not problems,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=description,
                    metadata={k: v for k, v in figures_md.items() if isinstance(v, int | float)},
                )
            ],
        )

    return synthetic_quality
