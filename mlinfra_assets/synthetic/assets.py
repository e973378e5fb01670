"""Synthetic assets: the SDV synthesizer, the gates on its candidate rows, the published rows.

Lineage: synthesizer -> synthetic_quality (samples candidates into `synthetic.candidate_rows`,
judges quality, privacy and utility; its check reports pass/fail with ERROR severity) ->
synthetic_rows (copies the candidates when the gate passed; an EMPTY table, with the reason in
its metadata, when it failed or has no verdict) -> training. No row that failed a gate reaches
`synthetic.synthetic_rows`, and a failed gate never stops training: it only withholds the rows.
"""

import os
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.plots import df_markdown
from mlinfra_assets.resources import DataDir, Warehouse, replace_table, replace_table_from_df
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import round_figures
from mlinfra_assets.synthetic import data, figures, gates
from mlinfra_assets.synthetic.report import report
from mlinfra_assets.synthetic.sampling import class_plan, sample_batches, stage_batches
from mlinfra_assets.synthetic.synthesizer import fit_or_reuse, load

QUALITY_CHECK = "synthetic_quality_gate"
QUALITY_TABLE = "synthetic.synthetic_quality"
SYNTHESIZER_IN = {"synthesizer": dg.AssetIn(key=keys.SYNTHESIZER)}


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
    @round_figures
    def synthesizer(context: dg.AssetExecutionContext, warehouse: Warehouse, data_dir: DataDir):
        """SDV synthesizer (`synthetic.synthesizer`: gaussian_copula, ctgan, tvae or copula_gan)
        fit on labeled real rows outside the holdout (gold label where annotated, else the weak
        label), stratified so minority classes are well represented, with the spec's constraints.
        The file is versioned by a hash of its fit rows and settings and reused while they hold."""
        with warehouse.connect(read_only=True) as con:
            counts = data.class_counts(con, spec)
            quotas = data.fit_quotas(counts, spec.synthetic.fit_rows, spec.synthetic.target_share)
            frame = data.stratified_frame(con, spec, quotas, data.FIT_SALT).drop(columns=[data.ROW_ID])
        fit = fit_or_reuse(frame, spec, data_dir.path("models", "synthesizer", mkdir=False), spec.training.seed)
        rows_path = fit_rows_path(fit.path)
        if not rows_path.exists():
            partial = rows_path.with_suffix(".partial")
            frame.to_parquet(partial, index=False)
            os.replace(partial, rows_path)
        for warning in fit.plan.warnings:
            context.log.warning(warning)
        context.log.info(f"synthesizer {fit.version}: {'reused' if fit.reused else 'fit'} on {fit.rows} rows")
        per_class = frame[data.LABEL].value_counts()
        table = pd.DataFrame({
            "class": spec.classes,
            "index": range(spec.n_classes),
            "labeled_rows": [counts[i] for i in range(spec.n_classes)],
            "fit_rows": [int(per_class.get(c, 0)) for c in spec.classes],
        })
        sdtypes = pd.DataFrame([(c, fit.sdtypes.get(c, "not modeled")) for c in [*spec.feature_columns, data.LABEL]],
                               columns=["column", "sdtype"])
        return dg.MaterializeResult(
            value={"path": str(fit.path), "version": fit.version, "rows": fit.rows},
            data_version=dg.DataVersion(fit.version),
            metadata={
                "dagster/row_count": fit.rows,
                "synthesizer": spec.synthetic.synthesizer,
                "version": fit.version,
                "model_path": dg.MetadataValue.path(str(fit.path)),
                "reused": fit.reused,
                "refit": not fit.reused,
                "fit_seconds": round(fit.seconds, 3),
                "unmodeled_columns": len(spec.feature_columns) - len(fit.plan.modeled),
                "column_warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in fit.plan.warnings) or "none"),
                "constraints": dg.MetadataValue.md("\n".join(f"- `{c}`" for c in spec.synthetic.constraints) or "none"),
                **{f"fit_rows_{c}": int(per_class.get(c, 0)) for c in spec.classes},
                "classes": df_markdown(table),
                "sdtypes": df_markdown(sdtypes),
                "class_counts": figures.class_bars(table, ["labeled_rows", "fit_rows"], "Labeled vs fit rows"),
            },
        )

    return synthesizer


def sample_candidates(context: dg.AssetExecutionContext, spec: DatasetSpec, synthesizer: dict,
                      warehouse: Warehouse, data_dir: DataDir) -> gates.Sampled:
    """Sample the rebalancing rows of every class the plan names into `synthetic.candidate_rows`
    (exact copies of real rows dropped, copies of fit rows counted)."""
    with warehouse.connect(read_only=True) as con:
        plan = class_plan(data.class_counts(con, spec), spec)
    for warning in plan.warnings:
        context.log.warning(warning)
    if plan.problem:
        context.log.warning(f"nothing sampled: {plan.problem}")
    model = load(synthesizer["path"])
    staging = data_dir.path("tmp", "synthetic", mkdir=False)
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging) as tmp:
        files, per_class = stage_batches(sample_batches(model, spec, plan.rows), Path(tmp), synthesizer["version"])
        with warehouse.connect() as con:
            if files:
                fit_path = str(fit_rows_path(synthesizer["path"]))
                copies = int(con.execute(data.fit_copies_sql(spec), [files, fit_path]).fetchall()[0][0])
                rows = replace_table(con, data.CANDIDATES_TABLE, data.synthetic_rows_sql(spec), [files])
            else:
                copies, rows = 0, replace_table(con, data.CANDIDATES_TABLE, data.empty_rows_sql(spec))
    sampled = sum(per_class.values())
    context.log.info(f"{rows} candidate rows for {plan.sampled or 'no class'}; "
                     f"{sampled - rows} exact copies of real rows dropped ({copies} of fit rows)")
    return gates.Sampled(plan, sampled, sampled - rows, copies)


def _class_table(spec: DatasetSpec, counts: dict[int, int], written: dict[int, int]) -> pd.DataFrame:
    real, synthetic = sum(counts.values()), sum(written.values())
    table = pd.DataFrame({
        "class": spec.classes,
        "index": range(spec.n_classes),
        "real": [counts[i] for i in range(spec.n_classes)],
        "synthetic": [int(written.get(i, 0)) for i in range(spec.n_classes)],
    })
    table["share_before"] = table["real"] / real
    table["share_after"] = (table["real"] + table["synthetic"]) / (real + synthetic)
    return table


def build_synthetic_rows(spec: DatasetSpec) -> dg.AssetsDefinition:
    target = spec.synthetic.target_share

    @dg.asset(
        key=keys.SYNTHETIC_ROWS,
        ins=SYNTHESIZER_IN,
        deps=[keys.SYNTHETIC_QUALITY],
        group_name="synthetic",
        kinds={"sdv", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def synthetic_rows(context: dg.AssetExecutionContext, synthesizer: dict, warehouse: Warehouse):
        """The synthetic rows training reads: `_synthetic_id`, the features, `_label` (class
        index) and `_synthesizer_version`. Every class under synthetic.target_share of the
        labeled rows (with at least synthetic.min_class_rows) is sampled conditionally until it
        reaches the target share of real + synthetic. Only rows that passed synthetic_quality's
        quality and privacy gates are here: when the gate failed (or has no verdict for the
        current candidates) the table is EMPTY and `withheld_reason` says why; training runs on."""
        version = synthesizer["version"]
        with warehouse.connect() as con:
            candidates = int(con.execute(f"SELECT count(*) FROM {data.CANDIDATES_TABLE}").fetchall()[0][0])
            versions = [v for (v,) in con.execute(
                f"SELECT DISTINCT {data.VERSION} FROM {data.CANDIDATES_TABLE}").fetchall()]
            reason = gates.withheld_reason(con)
            if reason is None and versions and versions != [version]:
                reason = (f"{gates.WITHHELD}: {data.CANDIDATES_TABLE} was sampled by synthesizer {versions}, "
                          f"not the current {version} (re-materialize synthetic/synthetic_quality)")
            if reason is None:
                rows = replace_table(con, data.ROWS_TABLE,
                                     f"SELECT * FROM {data.CANDIDATES_TABLE} ORDER BY {data.SYNTHETIC_ID}")
            else:
                rows = replace_table(con, data.ROWS_TABLE, data.empty_rows_sql(spec))
            written = dict(con.execute(
                f"SELECT {data.LABEL}, count(*) FROM {data.ROWS_TABLE} GROUP BY {data.LABEL}").fetchall())
            counts = data.class_counts(con, spec)
        plan = class_plan(counts, spec)
        if reason is not None:
            context.log.warning(f"{reason}; training runs without synthetic rows")
        table = _class_table(spec, counts, written).merge(plan.table[["index", "status"]], on="index")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "withheld": reason is not None,
                "withheld_reason": reason or "not withheld: the candidates passed the quality and privacy gates",
                "candidate_rows": candidates,
                "synthesizer_version": version,
                "target_share": target,
                "sampled_classes": ", ".join(plan.sampled) or "none",
                "skipped_classes": ", ".join(plan.skipped) or "none",
                "class_warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in plan.warnings) or "none"),
                **{f"rows_{c}": int(n) for c, n in zip(table["class"], table["synthetic"], strict=True)},
                **{f"share_after_{c}": float(s) for c, s in zip(table["class"], table["share_after"], strict=True)},
                "classes": df_markdown(table),
                "shares": figures.class_bars(table, ["share_before", "share_after"], "Class shares", hline=target),
            }
        )

    return synthetic_rows


def build_synthetic_quality(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.SYNTHETIC_QUALITY,
        ins=SYNTHESIZER_IN,
        # utility scores the model on the gold holdout: it reads raw.gold (none without gold)
        deps=[keys.GOLD] if spec.gold is not None else [],
        group_name="synthetic",
        kinds={"sdv", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                QUALITY_CHECK,
                asset=keys.SYNTHETIC_QUALITY,
                blocking=False,  # a failed gate withholds the rows (synthetic_rows is empty), never training
                description="Fails (ERROR) when the candidates' SDV overall quality is under "
                "synthetic.quality_threshold, diagnostic validity under 100%, a row copies a real row, "
                "the DCR ratio is under synthetic.privacy.min_dcr_ratio, or a gate cannot be measured: "
                "synthetic_rows then withholds every candidate row from training.",
            )
        ],
    )
    @round_figures
    def synthetic_quality(context: dg.AssetExecutionContext, synthesizer: dict, warehouse: Warehouse,
                          data_dir: DataDir):
        """Candidate synthetic rows (`synthetic.candidate_rows`) judged before publication: SDV
        quality (column shapes, column pair trends) against real rows of the same class mix, SDV
        diagnostic (validity, structure) against the fit rows, privacy (exact-copy share, distance
        to the closest fit row vs a real holdout's, sdmetrics DCR metrics) and utility (TSTR vs
        TRTR, the platform's model with and without the rows): one score per metric/property/column,
        and the verdict rows synthetic_rows reads."""
        sampled = sample_candidates(context, spec, synthesizer, warehouse, data_dir)
        fit_rows = pd.read_parquet(fit_rows_path(synthesizer["path"]))
        with warehouse.connect(read_only=True) as con:
            verdict = gates.judge(con, spec, load(synthesizer["path"]), fit_rows, sampled)
        for trace in verdict.tracebacks:
            context.log.warning(trace)
        with warehouse.connect() as con:
            rows = replace_table_from_df(con, QUALITY_TABLE, verdict.scores)
        return report(context, spec, verdict, rows, sampled, QUALITY_CHECK)

    return synthetic_quality
