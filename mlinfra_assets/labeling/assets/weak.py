"""Weak supervision assets: the label matrix, the LF summary, the label model's weak labels."""

import dagster as dg
import pandas as pd
from pydantic import Field

from mlinfra_assets import keys
from mlinfra_assets.holdout import gold_from
from mlinfra_assets.labeling import analysis
from mlinfra_assets.labeling.forms import FORMS
from mlinfra_assets.labeling.label_model import read_patterns
from mlinfra_assets.labeling.lfs import LFSet, load_lfs
from mlinfra_assets.labeling.matrix import TABLE, MatrixRun, build_label_matrix
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import round_figures

GROUP = "labeling"
ANNOTATED_GOLD = "SELECT row_id, label FROM labeling.gold_labels"


class LabelMatrixConfig(dg.Config):
    form: str = Field(
        default="fastest",
        description="Form every LF runs in: fastest (each LF's SQL, else vectorized, else "
        "row-wise form), or sql / vectorized / rowwise for all (e.g. rowwise to re-check "
        "against Snorkel's own applier).",
    )


def check_matrix(warehouse: Warehouse, names: list[str]) -> None:
    """Raise unless labeling.label_matrix has a column for every current LF."""
    if not warehouse.table_exists(TABLE):
        raise ValueError(f"{TABLE} does not exist: materialize labeling/label_matrix first")
    columns = {
        r[0]
        for r in warehouse.query_df(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'labeling' AND table_name = 'label_matrix'"
        ).itertuples(index=False)
    }
    stale = [n for n in names if n not in columns]
    if stale:
        raise ValueError(
            f"{TABLE} has no column(s) {stale} for the current labeling functions: "
            "re-materialize labeling/label_matrix"
        )


def gold_deps(spec: DatasetSpec) -> list[dg.AssetKey]:
    """`raw.gold` when the spec has gold labels (annotated gold is read when it exists: the
    human loop depends on the weak labels, so it cannot be a dependency)."""
    return [keys.GOLD] if spec.gold is not None else []


def gold_sources(spec: DatasetSpec, warehouse: Warehouse) -> dict[str, str]:
    """Gold label queries (`row_id, label`) that exist: `gold` (the spec's, raw.gold) and
    `annotated` (labeling.gold_labels)."""
    sources = {}
    if spec.gold is not None and warehouse.table_exists(keys.GOLD_TABLE):
        sources["gold"] = gold_from(spec)
    if warehouse.table_exists("labeling.gold_labels") and warehouse.scalar(
        "SELECT count(*) FROM labeling.gold_labels"
    ):
        sources["annotated"] = ANNOTATED_GOLD
    return sources


def _spark_matrix(context: dg.AssetExecutionContext, warehouse: Warehouse, spec: DatasetSpec, lf_set: LFSet) -> MatrixRun:
    """The label matrix on Spark (`warehouse.engine: spark`): the LFs' SQL forms over the lake."""
    import time

    from mlinfra_assets import lake
    from mlinfra_assets.labeling.spark import build_lake_matrix

    started = time.perf_counter()
    with warehouse.connect() as con:
        rows = build_lake_matrix(context.resources.pyspark.spark_session, con, spec, lf_set,
                                 lake.lake_root(spec, warehouse.path))
    return MatrixRun(rows, {n: "sql" for n in lf_set.names}, time.perf_counter() - started, 0.0, 0)


def build_label_matrix_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    on_spark = spec.warehouse.engine == "spark"

    @dg.asset(
        key=keys.LABEL_MATRIX,
        deps=[keys.raw_key(spec)],
        group_name=GROUP,
        kinds={"snorkel", "spark"} if on_spark else {"snorkel", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
        # the Spark engine's step also needs Dagster's PySpark resource
        required_resource_keys={"warehouse", "pyspark"} if on_spark else {"warehouse"},
        metadata={"engine": spec.warehouse.engine},
    )
    @round_figures
    def label_matrix(context: dg.AssetExecutionContext, config: LabelMatrixConfig) -> dg.MaterializeResult:
        """The votes of every labeling function on every raw row: `row_id` and one SMALLINT
        column per LF (-1 abstain, else a class index). SQL LFs run as one DuckDB query over
        the raw table; vectorized and row-wise (Snorkel) LFs on bounded chunks; the matrix
        is replaced in one transaction, so a failed run keeps the previous one. With
        `warehouse.engine: spark`, the SQL LFs run as one Spark SQL job over the lake."""
        warehouse: Warehouse = context.resources.warehouse
        lf_set = load_lfs(spec)
        if on_spark:
            run = _spark_matrix(context, warehouse, spec, lf_set)
        else:
            run = build_label_matrix(warehouse, spec, lf_set, form=config.form)
        with warehouse.connect(read_only=True) as con:
            summary = analysis.lf_summary(con, lf_set.names, spec.classes, None)
            patterns = read_patterns(con, lf_set.names)
        voted = patterns["n"][(patterns[lf_set.names] != -1).any(axis=1)].sum() / patterns["n"].sum()
        forms = pd.DataFrame(
            {
                "lf": lf_set.names,
                "ran_as": [run.forms[n] for n in lf_set.names],
                "written_as": [", ".join(lf.forms) for lf in lf_set.lfs],
            }
        )
        seconds = run.sql_seconds + run.python_seconds
        context.log.info(f"{len(lf_set.lfs)} LFs on {run.rows} rows in {seconds:.2f}s")
        coverage = summary[["lf", "polarity", "coverage"]]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": run.rows,
                "labeling_functions": len(lf_set.lfs),
                "lf_module": lf_set.module,
                **{f"lfs_{f}": sum(v == f for v in run.forms.values()) for f in FORMS},
                "rows_with_a_vote_share": float(voted),
                "vote_patterns": len(patterns),
                "apply_seconds": round(seconds, 3),
                "sql_seconds": round(run.sql_seconds, 3),
                "python_seconds": round(run.python_seconds, 3),
                "python_chunks": run.chunks,
                "rows_per_second": round(run.rows / max(seconds, 1e-9)),
                "forms": df_markdown(forms),
                "coverage": df_markdown(coverage),
                "coverage_plot": png_markdown(
                    lambda ax: ax.barh(coverage["lf"], coverage["coverage"]), "Coverage per labeling function"
                ),
            }
        )

    return label_matrix


def build_lf_summary(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.LF_SUMMARY,
        deps=[keys.LABEL_MATRIX, keys.GOLD_LABELS, *gold_deps(spec)],
        group_name=GROUP,
        kinds={"snorkel", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def lf_summary(warehouse: Warehouse) -> dg.MaterializeResult:
        """Snorkel LFAnalysis's figures per labeling function, computed in SQL on the label
        matrix: polarity (classes it votes for), coverage, overlaps, conflicts over all rows,
        and correct / incorrect / empirical accuracy (share of its votes that match) on the
        annotated gold labels (NULL while there are none); the spec's gold gives the same
        figures in `gold_accuracy`. Any number of classes."""
        import numpy as np

        from mlinfra_assets.resources import replace_table_from_df

        names = load_lfs(spec).names
        check_matrix(warehouse, names)
        sources = gold_sources(spec, warehouse)
        with warehouse.connect(read_only=True) as con:
            summary = analysis.lf_summary(con, names, spec.classes, sources.get("annotated"))
            oracle = analysis.lf_summary(con, names, spec.classes, sources["gold"]) if "gold" in sources else None
        with warehouse.connect() as con:
            rows = replace_table_from_df(con, "labeling.lf_summary", summary)
        gold_rows = warehouse.scalar("SELECT count(*) FROM labeling.gold_labels") if "annotated" in sources else 0
        metadata = {"dagster/row_count": rows, "gold_rows": int(gold_rows), "summary": df_markdown(summary)}
        accuracy, label = summary["emp_acc"], "accuracy (annotated gold)"
        if oracle is not None:
            metadata["gold_accuracy"] = df_markdown(oracle)
            if "annotated" not in sources:
                accuracy, label = oracle["emp_acc"], "accuracy (spec gold)"
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
