"""The weak_labels asset: Snorkel's LabelModel or majority vote over the label matrix, whichever
scores better on the gold rows."""

import dagster as dg
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.holdout import holdout_predicate
from mlinfra_assets.labeling import evaluation, fit_cache, label_model
from mlinfra_assets.labeling.assets.weak import GROUP, check_matrix, gold_deps, gold_sources
from mlinfra_assets.labeling.lfs import load_lfs, spec_class_balance
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import DataDir, Warehouse, replace_table
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import round_figures

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
    metric = spec.metric

    @dg.asset(
        key=keys.WEAK_LABELS,
        deps=[keys.LABEL_MATRIX, *gold_deps(spec)],
        group_name=GROUP,
        kinds={"snorkel", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                LM_VS_MV_CHECK,
                asset=keys.WEAK_LABELS,
                description="Warns when Snorkel's LabelModel scores worse than majority vote on the gold "
                f"rows (the spec's metric, {metric}): the LFs' dependencies or the class balance then "
                "mislead the model, and majority vote writes the weak labels instead.",
            )
        ],
    )
    @round_figures
    def weak_labels(context: dg.AssetExecutionContext, warehouse: Warehouse, data_dir: DataDir) -> dg.MaterializeResult:
        """Weak labels from the labeling functions' votes: one `prob_<class>` per class,
        `label` (class index, the argmax), `confidence` (its probability) and
        `label_model_version` (`lm-...` Snorkel's LabelModel, `mv-...` majority vote).
        Rows no labeling function voted on are left out (counted).

        The method is chosen, not assumed: where gold rows exist (the spec's gold, else
        annotated gold labels), Snorkel's LabelModel and majority vote are both scored on the
        voted gold rows with the spec's training metric and the better one writes the labels
        (a tie keeps the label model); without gold the label model is used. Metadata:
        `label_model_choice`, `label_model_<metric>`, `majority_vote_<metric>`,
        `label_model_reason`, `label_model_choice_gold`. A label model fit that permutes the
        classes (most LFs estimated below chance, or agreeing LFs overruled) is rejected
        (`label_model_rejected_starts`); when every start is, majority vote writes the labels
        and `label_model_reason` says so. The class balance comes from the
        spec, else the LF module, else annotated gold, else the LFs' majority vote. A fit of the
        same inputs as an earlier one is read back (`label_model_fit`; labeling/fit_cache.py)."""
        lf_set = load_lfs(spec)
        names = lf_set.names
        check_matrix(warehouse, names)
        balance, source = class_balance(spec, lf_set.class_balance, warehouse)
        with warehouse.connect(read_only=True) as con:
            patterns = label_model.read_patterns(con, names)
        lm, how_fitted = fit_cache.fit(
            data_dir.path(fit_cache.FOLDER, mkdir=False), patterns, names, spec.classes, balance, source,
            spec.labeling.fit_rows, spec.training.seed,
        )
        fits = {label_model.LABEL_MODEL: lm}
        fits[label_model.MAJORITY] = label_model.majority_fit(
            patterns, names, spec.classes, lm.class_balance, lm.balance_source
        )
        tables = {}
        for name, gold_sql in gold_sources(spec, warehouse).items():
            # the choice never looks at the evaluation holdout: the model is judged on it later
            outside = f"SELECT * FROM ({gold_sql}) AS g WHERE NOT {holdout_predicate(spec, 'g.row_id')}"
            with warehouse.connect(read_only=True) as con:
                gold = evaluation.gold_patterns(con, names, outside)
            if (gold[names].to_numpy() != -1).any(axis=1).any():
                tables[name] = evaluation.compare_methods(
                    gold, fits, names, metric, spec.n_classes, spec.positive_index
                )
        choice, reason, judged_on = _choice(tables, metric)
        if lm.fallback_reason is not None:  # no valid label model fit: never write a permuted labelling
            choice, reason = label_model.MAJORITY, lm.fallback_reason
        fit = fits[choice]
        with warehouse.connect() as con:
            con.register("_mlinfra_lm_patterns", fit.patterns)
            try:
                sql = label_model.weak_labels_sql(names, spec.classes, "_mlinfra_lm_patterns")
                rows = replace_table(con, WEAK_TABLE, sql, [fit.version])
            finally:
                con.unregister("_mlinfra_lm_patterns")
        counts = fit.patterns.groupby("label")["n"].sum().reindex(range(spec.n_classes), fill_value=0)
        figures = tables[judged_on].set_index("method")[metric] if judged_on else None
        no_gold = "no gold rows with a vote: nothing to score on"
        metadata = {
            "dagster/row_count": rows,
            "label_model_choice": choice,
            "label_model_reason": reason,
            "label_model_metric": metric,
            f"label_model_{metric}": float(figures[label_model.LABEL_MODEL]) if judged_on else no_gold,
            f"majority_vote_{metric}": float(figures[label_model.MAJORITY]) if judged_on else no_gold,
            "label_model_choice_gold": judged_on or "none",
            "label_model_choice_rows": int(tables[judged_on]["rows"].iloc[0]) if judged_on else 0,
            "rows_without_votes": fit.rows_without_votes,
            "coverage": rows / (rows + fit.rows_without_votes),
            "label_model_version": fit.version,
            "class_balance": str([round(p, 4) for p in fit.class_balance]),
            "class_balance_source": fit.balance_source,
            "posterior_balance": str([round(p, 4) for p in fit.posterior_balance]),
            "label_model_init_scale": lm.init_scale if lm.init_scale is not None else "no valid label model fit",
            "label_model_rejected_starts": lm.rejected_starts,
            "label_model_fit": how_fitted,
            "fit_rows": lm.fit_rows,
            "vote_patterns": len(fit.patterns),
            "class_distribution": df_markdown(pd.DataFrame({"class": spec.classes, "rows": counts.to_numpy()})),
            "mean_confidence": float((fit.patterns["confidence"] * fit.patterns["n"]).sum() / fit.patterns["n"].sum()),
            "lf_accuracy_estimates": df_markdown(
                pd.DataFrame({"lf": list(lm.lf_accuracy), "estimated_accuracy": list(lm.lf_accuracy.values())})
            ),
        }
        for name, table in tables.items():
            metadata |= _comparison_metadata(name, table, metric)
        context.log.info(f"weak labels {fit.version}: {rows} rows, {fit.rows_without_votes} without votes")
        context.log.info(f"weak labels by {choice}: {reason}")
        return dg.MaterializeResult(metadata=metadata, check_results=[_check(tables, metric, choice, lm.fallback_reason)])

    return weak_labels


def _choice(tables: dict[str, pd.DataFrame], metric: str) -> tuple[str, str, str | None]:
    """(method, reason, the gold source it was judged on): the spec's gold first, else annotated."""
    for source in ("gold", "annotated"):
        if source in tables:
            choice, reason = evaluation.choose(tables[source], metric)
            return choice, f"{reason} ({'the spec' if source == 'gold' else 'annotated'} gold)", source
    return label_model.LABEL_MODEL, (
        "no gold rows with a vote (no spec gold, no annotation yet) to score on: Snorkel's LabelModel is "
        "used by default, as it weighs each LF by its estimated accuracy; the choice is made again once "
        "annotations exist"
    ), None


def _check(tables: dict[str, pd.DataFrame], metric: str, choice: str, fallback: str | None) -> dg.AssetCheckResult:
    """Warns when the label model scores below majority vote on a gold source, or gave no valid
    fit at all (`fallback`: its figures are then majority vote's)."""
    figures, worse = {}, []
    for source, table in tables.items():
        by = table.set_index("method")
        for m in (label_model.LABEL_MODEL, label_model.MAJORITY):
            figures |= {f"{source}_{k}_{m}": float(by.loc[m, k]) for k in dict.fromkeys((metric, "accuracy", "coverage"))}
        if by.loc[label_model.LABEL_MODEL, metric] < by.loc[label_model.MAJORITY, metric]:
            worse.append(source)
    if fallback is not None:
        return dg.AssetCheckResult(
            check_name=LM_VS_MV_CHECK, passed=False, severity=dg.AssetCheckSeverity.WARN, description=fallback,
            metadata={"gold_sources": ", ".join(tables) or "none", "weak_labels_by": choice, **figures},
        )
    return dg.AssetCheckResult(
        check_name=LM_VS_MV_CHECK,
        passed=not worse,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"label model worse than majority vote ({metric}) on {', '.join(worse)} gold; the weak labels "
            f"were written by {choice}" if worse
            else f"label model at least as good as majority vote ({metric}) on {', '.join(tables)} gold" if tables
            else "no gold labels yet: nothing to compare on"
        ),
        metadata={"gold_sources": ", ".join(tables) or "none", "weak_labels_by": choice, **figures},
    )


def _comparison_metadata(source: str, table: pd.DataFrame, metric: str) -> dict:
    lfs = table[table["method"].str.startswith("lf:")]
    best = lfs.loc[lfs[metric].fillna(-1).idxmax()]
    by = table.set_index("method")
    return {
        f"{source}_rows": int(table["rows"].iloc[0]),
        **{f"{source}_{m}_{k}": float(by.loc[m, k]) for m in (label_model.LABEL_MODEL, label_model.MAJORITY)
           for k in dict.fromkeys((metric, "accuracy", "coverage"))},
        f"{source}_best_lf": best["method"][3:],
        f"{source}_best_lf_{metric}": float(best[metric]),
        f"{source}_comparison": df_markdown(table),
        f"{source}_{metric}_plot": png_markdown(
            lambda ax: ax.barh(table["method"], table[metric], color=["C1", "C2"] + ["C0"] * len(lfs)),
            f"{metric} against the {source} labels",
        ),
    }
