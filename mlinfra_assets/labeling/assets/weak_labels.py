"""The weak_labels asset: Snorkel's LabelModel over the label matrix, checked against majority vote."""

import dagster as dg
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.labeling import evaluation, label_model
from mlinfra_assets.labeling.assets.weak import GROUP, check_matrix, gold_sources
from mlinfra_assets.labeling.lfs import load_lfs, spec_class_balance
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import Warehouse, replace_table
from mlinfra_assets.spec import DatasetSpec

WEAK_TABLE = "labeling.weak_labels"
LM_VS_MV_CHECK = "label_model_not_worse_than_majority_vote"


def class_balance(spec: DatasetSpec, module_balance: list[float] | None, warehouse: Warehouse) -> tuple:
    """(prior or None, where it comes from): the spec, the LF module, annotated gold, or
    None: estimated from the LFs' majority vote (`label_model.estimate_balance`)."""
    if (balance := spec_class_balance(spec)) is not None:
        return balance, "spec"
    if module_balance is not None:
        return module_balance, "lf_module"
    if warehouse.table_exists("labeling.gold_labels"):
        counts = warehouse.query_df("SELECT label, count(*) AS n FROM labeling.gold_labels GROUP BY label")
        balance = label_model.gold_balance(counts.set_index("label")["n"], spec.n_classes)
        if balance is not None:
            return balance, "annotated_gold"
    return None, "majority_vote"


def build_weak_labels(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.WEAK_LABELS,
        deps=[keys.LABEL_MATRIX],
        group_name=GROUP,
        kinds={"snorkel", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                LM_VS_MV_CHECK,
                asset=keys.WEAK_LABELS,
                description="Warns when Snorkel's LabelModel is worse than MajorityLabelVoter on a "
                "gold source (positive-class F1, then accuracy): the LFs' dependencies or the class "
                "balance are then misleading the model.",
            )
        ],
    )
    def weak_labels(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """Probabilistic labels from Snorkel's LabelModel fit on the label matrix: one
        `prob_<class>` per class, `label` (argmax), `confidence` (its probability) and the
        `label_model_version`. Rows no labeling function voted on are left out (counted).
        The class balance comes from the spec, else the LF module, else annotated gold,
        else the LFs' majority vote on the voted rows. Metadata compares the label model with
        majority vote and each single LF on every gold source."""
        lf_set = load_lfs(spec)
        names = lf_set.names
        check_matrix(warehouse, names)
        balance, source = class_balance(spec, lf_set.class_balance, warehouse)
        with warehouse.connect(read_only=True) as con:
            patterns = label_model.read_patterns(con, names)
        fit = label_model.fit(
            patterns, names, spec.classes, balance, source, spec.labeling.fit_rows, spec.training.seed
        )
        with warehouse.connect() as con:
            con.register("_mlinfra_lm_patterns", fit.patterns)
            try:
                sql = label_model.weak_labels_sql(names, spec.classes, "_mlinfra_lm_patterns")
                rows = replace_table(con, WEAK_TABLE, sql, [fit.version])
            finally:
                con.unregister("_mlinfra_lm_patterns")
        counts = fit.patterns.groupby("label")["n"].sum().reindex(range(spec.n_classes), fill_value=0)
        metadata = {
            "dagster/row_count": rows,
            "rows_without_votes": fit.rows_without_votes,
            "coverage": rows / (rows + fit.rows_without_votes),
            "label_model_version": fit.version,
            "class_balance": str([round(p, 4) for p in fit.class_balance]),
            "class_balance_source": fit.balance_source,
            "posterior_balance": str([round(p, 4) for p in fit.posterior_balance]),
            "label_model_init_scale": fit.init_scale,
            "fit_rows": fit.fit_rows,
            "vote_patterns": len(fit.patterns),
            "class_distribution": df_markdown(pd.DataFrame({"class": spec.classes, "rows": counts.to_numpy()})),
            "mean_confidence": float((fit.patterns["confidence"] * fit.patterns["n"]).sum() / fit.patterns["n"].sum()),
            "lf_accuracy_estimates": df_markdown(
                pd.DataFrame({"lf": list(fit.lf_accuracy), "estimated_accuracy": list(fit.lf_accuracy.values())})
            ),
        }
        verdicts = {}
        for name, gold_sql in gold_sources(spec, warehouse).items():
            with warehouse.connect(read_only=True) as con:
                gold = evaluation.gold_patterns(con, names, gold_sql)
            if gold.empty:
                continue
            table = evaluation.compare_methods(gold, fit, names, spec.n_classes, spec.positive_index)
            metadata |= _comparison_metadata(name, table)
            verdicts[name] = evaluation.label_model_vs_majority(table)
        context.log.info(f"weak labels {fit.version}: {rows} rows, {fit.rows_without_votes} without votes")
        return dg.MaterializeResult(metadata=metadata, check_results=[_check(verdicts)])

    return weak_labels


def _check(verdicts: dict[str, tuple[bool, dict[str, float]]]) -> dg.AssetCheckResult:
    figures = {f"{source}_{k}": v for source, (_, figs) in verdicts.items() for k, v in figs.items()}
    worse = [source for source, (ok, _) in verdicts.items() if not ok]
    return dg.AssetCheckResult(
        check_name=LM_VS_MV_CHECK,
        passed=not worse,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"label model worse than majority vote on {', '.join(worse)} gold" if worse
            else f"label model at least as good as majority vote on {', '.join(verdicts)} gold" if verdicts
            else "no gold labels yet: nothing to compare on"
        ),
        metadata={"gold_sources": ", ".join(verdicts) or "none", **figures},
    )


def _comparison_metadata(source: str, table: pd.DataFrame) -> dict:
    lfs = table[table["method"].str.startswith("lf:")]
    best = lfs.loc[lfs["f1"].idxmax()]
    by = table.set_index("method")
    return {
        f"{source}_rows": int(table["rows"].iloc[0]),
        **{f"{source}_{m}_{k}": float(by.loc[m, k]) for m in ("label_model", "majority_vote")
           for k in ("f1", "accuracy", "coverage")},
        f"{source}_best_lf": best["method"][3:],
        f"{source}_best_lf_f1": float(best["f1"]),
        f"{source}_comparison": df_markdown(table),
        f"{source}_f1_plot": png_markdown(
            lambda ax: ax.barh(table["method"], table["f1"], color=["C1", "C2"] + ["C0"] * len(lfs)),
            f"F1 of the positive class vs {source} gold",
        ),
    }
