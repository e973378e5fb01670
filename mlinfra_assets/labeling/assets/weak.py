"""Weak supervision assets: the label matrix, the label model's weak labels, the LF summary."""

import time

import dagster as dg
import numpy as np
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.holdout import gold_from
from mlinfra_assets.labeling import analysis, label_model
from mlinfra_assets.labeling.apply import apply_lfs, coverage_table, raw_chunks
from mlinfra_assets.labeling.lfs import load_lfs
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import Warehouse, replace_table_from_df
from mlinfra_assets.spec import DatasetSpec

GROUP = "labeling"


def read_matrix(warehouse: Warehouse, names: list[str]) -> pd.DataFrame:
    """labeling.label_matrix, checked against the current labeling functions."""
    matrix = warehouse.query_df("SELECT * FROM labeling.label_matrix")
    stale = [n for n in names if n not in matrix.columns]
    if stale:
        raise ValueError(
            f"labeling.label_matrix has no column(s) {stale} for the current labeling functions: "
            "re-materialize labeling/label_matrix"
        )
    return matrix[["row_id", *names]]


def oracle_gold(spec: DatasetSpec, warehouse: Warehouse) -> pd.DataFrame | None:
    """The spec's gold labels (the demo's oracle), for evaluation figures only."""
    if spec.gold is None or not warehouse.table_exists(spec.gold.table):
        return None
    return warehouse.query_df(gold_from(spec))


def annotated_gold(warehouse: Warehouse) -> pd.DataFrame | None:
    """`row_id, label` of labeling.gold_labels, or None while there is no annotation.

    Read by SQL, not as an asset dependency: gold labels come downstream of weak labels
    and a declared dependency would be a cycle.
    """
    if not warehouse.table_exists("labeling.gold_labels"):
        return None
    gold = warehouse.query_df("SELECT row_id, label FROM labeling.gold_labels")
    return gold if len(gold) else None


def build_label_matrix(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.LABEL_MATRIX,
        deps=[keys.raw_key(spec)],
        group_name=GROUP,
        kinds={"snorkel", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    def label_matrix(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """The votes of every labeling function on every raw row: `row_id` and one SMALLINT
        column per function (-1 abstain, else a class index). Built with Snorkel's
        PandasLFApplier over the raw table read in bounded chunks."""
        lf_set = load_lfs(spec)
        started = time.perf_counter()
        matrix = apply_lfs(raw_chunks(warehouse, spec), lf_set, spec.n_classes)
        seconds = time.perf_counter() - started
        with warehouse.connect() as con:
            rows = replace_table_from_df(con, "labeling.label_matrix", matrix)
        coverage = coverage_table(matrix, lf_set.names, spec.classes)
        voted = float((matrix[lf_set.names].to_numpy() != -1).any(axis=1).mean())
        context.log.info(f"{len(lf_set.lfs)} LFs on {rows} rows in {seconds:.1f}s")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "labeling_functions": len(lf_set.lfs),
                "lf_module": lf_set.module,
                "rows_with_a_vote_share": voted,
                "apply_seconds": round(seconds, 2),
                "coverage": df_markdown(coverage),
                "coverage_plot": png_markdown(
                    lambda ax: ax.barh(coverage["lf"], coverage["coverage"]), "Coverage per labeling function"
                ),
            }
        )

    return label_matrix


def build_weak_labels(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.WEAK_LABELS,
        deps=[keys.LABEL_MATRIX],
        group_name=GROUP,
        kinds={"snorkel", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    def weak_labels(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """Probabilistic labels from Snorkel's LabelModel fit on the label matrix: one
        `prob_<class>` per class, `label` (argmax), `confidence` (its probability) and the
        `label_model_version`. Rows no labeling function voted on are left out.
        Evaluation (metadata) compares the label model with majority vote and each single
        LF against the spec's gold labels and the annotated gold labels."""
        lf_set = load_lfs(spec)
        matrix = read_matrix(warehouse, lf_set.names)
        weak = label_model.fit_weak_labels(
            matrix, lf_set.names, spec.classes, lf_set.class_balance, seed=spec.training.seed
        )
        with warehouse.connect() as con:
            rows = replace_table_from_df(con, "labeling.weak_labels", weak.frame)
        counts = weak.frame["label"].value_counts().reindex(range(spec.n_classes), fill_value=0)
        distribution = pd.DataFrame({"class": spec.classes, "rows": counts.to_numpy()})
        metadata = {
            "dagster/row_count": rows,
            "rows_without_votes": weak.rows_without_votes,
            "coverage": rows / (rows + weak.rows_without_votes),
            "label_model_version": weak.version,
            "class_balance": str(lf_set.class_balance or "uniform (set CLASS_BALANCE in the LF module)"),
            "class_distribution": df_markdown(distribution),
            "mean_confidence": float(weak.frame["confidence"].mean()),
            "lf_accuracy_estimates": df_markdown(
                pd.DataFrame({"lf": list(weak.lf_accuracy), "estimated_accuracy": list(weak.lf_accuracy.values())})
            ),
        }
        for source, gold in (("oracle", oracle_gold(spec, warehouse)), ("annotated", annotated_gold(warehouse))):
            if gold is None:
                continue
            table = label_model.compare_methods(
                matrix, lf_set.names, weak.frame, gold, spec.n_classes, spec.positive_index
            )
            metadata |= _comparison_metadata(source, table)
        context.log.info(f"weak labels {weak.version}: {rows} rows")
        return dg.MaterializeResult(metadata=metadata)

    return weak_labels


def _comparison_metadata(source: str, table: pd.DataFrame) -> dict:
    lfs = table[table["method"].str.startswith("lf:")]
    best = lfs.loc[lfs["f1"].idxmax()]
    by = table.set_index("method")
    return {
        f"{source}_rows": int(table["rows"].iloc[0]),
        f"{source}_label_model_f1": float(by.loc["label_model", "f1"]),
        f"{source}_label_model_accuracy": float(by.loc["label_model", "accuracy"]),
        f"{source}_majority_vote_f1": float(by.loc["majority_vote", "f1"]),
        f"{source}_majority_vote_accuracy": float(by.loc["majority_vote", "accuracy"]),
        f"{source}_best_lf": best["method"][3:],
        f"{source}_best_lf_f1": float(best["f1"]),
        f"{source}_comparison": df_markdown(table),
        f"{source}_f1_plot": png_markdown(
            lambda ax: ax.barh(table["method"], table["f1"], color=["C1", "C2"] + ["C0"] * len(lfs)),
            f"F1 of the positive class vs {source} gold",
        ),
    }


def build_lf_summary(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.LF_SUMMARY,
        deps=[keys.LABEL_MATRIX, keys.GOLD_LABELS],
        group_name=GROUP,
        kinds={"snorkel", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    def lf_summary(warehouse: Warehouse) -> dg.MaterializeResult:
        """Snorkel's LFAnalysis per labeling function: polarity (classes it votes for),
        coverage, overlaps, conflicts over all rows, and correct / incorrect / empirical
        accuracy on the annotated gold labels (NULL while there are none)."""
        lf_set = load_lfs(spec)
        matrix = read_matrix(warehouse, lf_set.names)
        gold = annotated_gold(warehouse)
        summary = analysis.lf_summary(matrix, lf_set.lfs, spec.classes, gold)
        with warehouse.connect() as con:
            rows = replace_table_from_df(con, "labeling.lf_summary", summary)
        metadata = {
            "dagster/row_count": rows,
            "gold_rows": 0 if gold is None else len(gold),
            "summary": df_markdown(summary),
        }
        oracle = oracle_gold(spec, warehouse)
        accuracy, label = summary["emp_acc"], "accuracy (annotated gold)"
        if oracle is not None:
            on_oracle = analysis.empirical_accuracy(matrix, lf_set.lfs, oracle)
            metadata["oracle_accuracy"] = df_markdown(
                pd.concat([summary[["lf", "polarity", "coverage"]], on_oracle], axis=1)
            )
            if gold is None:
                accuracy, label = on_oracle["emp_acc"], "accuracy (oracle)"
        acc = accuracy.astype("Float64").to_numpy(dtype=float, na_value=np.nan)  # no bar: no evidence

        def draw(ax) -> None:  # noqa: ANN001
            y = np.arange(len(summary))
            ax.barh(y - 0.2, summary["coverage"], height=0.4, label="coverage")
            ax.barh(y + 0.2, acc, height=0.4, label=label)
            ax.set_yticks(y, summary["lf"])
            ax.legend(fontsize=7)

        metadata["coverage_accuracy_plot"] = png_markdown(draw, "Coverage and accuracy per LF", size=(7, 4))
        return dg.MaterializeResult(metadata=metadata)

    return lf_summary
