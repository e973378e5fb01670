"""Gold labels (one label per annotated row, conflicts reported) and the cleanlab label review."""

from datetime import datetime

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.holdout import gold_from
from mlinfra_assets.labeling import review
from mlinfra_assets.labeling.assets.human import GROUP, _exists
from mlinfra_assets.labeling.queries import load_sql, sql_identifiers
from mlinfra_assets.plots import df_markdown
from mlinfra_assets.resources import Warehouse, transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import round_figures

REVIEW_WEAK_ROWS = 20_000  # weak labels sampled into the review (cross-validation cost)
REVIEW_SHOWN = 25


def write_classes(con, spec: DatasetSpec) -> None:  # noqa: ANN001 - a DuckDB connection
    """`labeling.classes(label, class)`: the spec's classes, so views show labels by name."""
    import pandas as pd

    with transaction(con, _classes=pd.DataFrame({"label": range(spec.n_classes), "class": spec.classes})):
        con.execute("CREATE SCHEMA IF NOT EXISTS labeling")
        con.execute("CREATE OR REPLACE TABLE labeling.classes AS SELECT CAST(label AS INTEGER) AS label, "
                    "CAST(class AS VARCHAR) AS class FROM _classes")


def build_gold_labels(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.GOLD_LABELS,
        deps=[keys.ANNOTATIONS, keys.raw_key(spec), *([keys.GOLD] if spec.gold is not None else [])],
        group_name=GROUP,
        kinds={"duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def gold_labels(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """A view with one label per annotated row: `row_id, label, n_annotations`.

        Rule for conflicting labels: each annotator counts once per row, with their most
        recent label; the label with the most annotators wins; a tie goes to the label
        given most recently (then the lower class index). `n_annotations` counts every
        stored annotation of the row. Rows whose annotators disagree are listed in the
        `conflicts` metadata with the label kept.
        """
        with warehouse.connect() as con:
            con.execute(load_sql("annotations_table", **sql_identifiers(spec)))
            write_classes(con, spec)
            con.execute(load_sql("gold_labels"))
            rows = con.execute("SELECT count(*) FROM labeling.gold_labels").fetchall()[0][0]
            dist = con.execute("SELECT label, count(*) AS rows FROM labeling.gold_labels GROUP BY 1 ORDER BY 1").df()
            multi = con.execute("SELECT count(*) FROM labeling.gold_labels WHERE n_annotations > 1").fetchall()[0][0]
            conflicts = con.execute(load_sql("conflicts")).df()
            agree = None
            if spec.gold is not None and _exists(con, keys.GOLD_TABLE):
                agree = con.execute(load_sql("gold_agreement", gold_sql=gold_from(spec))).fetchall()[0][0]
        dist.insert(0, "class", [spec.classes[int(k)] for k in dist["label"]])
        if len(conflicts):  # class names, not indexes
            conflicts["votes"] = conflicts["votes"].str.replace(
                r"=(\d+)", lambda m: "=" + spec.classes[int(m.group(1))], regex=True
            )
            conflicts["gold_label"] = [spec.classes[int(k)] for k in conflicts["gold_label"]]
        if len(conflicts):
            context.log.warning(f"{len(conflicts)} row(s) have conflicting labels: resolved by the majority rule")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": int(rows),
                "rows_with_several_annotations": int(multi),
                "conflicting_rows": len(conflicts),
                "conflicts": df_markdown(conflicts.head(REVIEW_SHOWN)) if len(conflicts) else None,
                "class_distribution": df_markdown(dist),
                "agreement_with_spec_gold": None if agree is None else float(agree),
            }
        )

    return gold_labels


def build_label_review(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.LABEL_REVIEW,
        deps=[keys.GOLD_LABELS, keys.WEAK_LABELS, keys.raw_key(spec)],
        group_name=GROUP,
        kinds={"duckdb", "sklearn"},
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def label_review(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """Labels to look at again: annotations and weak labels that cleanlab flags as
        likely wrong (out-of-fold probabilities of the active-learning classifier),
        `row_id, source, given_label, suggested_label, label_quality, reviewed_at`, worst
        first. Replaced on each run; it changes no label."""
        ids = sql_identifiers(spec)
        seed = spec.training.seed
        with warehouse.connect() as con:
            con.execute(load_sql("annotations_table", **ids))
            write_classes(con, spec)
            con.execute(load_sql("gold_labels"))
            rows = con.execute(load_sql("review_rows", **ids), [seed, REVIEW_WEAK_ROWS]).df()
        try:
            issues = review.find_issues(spec, rows, seed)
        except review.NotEnoughLabels as exc:
            context.log.warning(str(exc))
            issues = rows.iloc[:0][["row_id", "source"]].assign(given_label="", suggested_label="", label_quality=0.0)
            skipped = str(exc)
        else:
            skipped = None
        with warehouse.connect() as con, transaction(con, _review=issues):
            con.execute(load_sql("review_table"), [datetime.now()])
        by_source = rows.groupby("source").size().rename("reviewed").to_frame()
        by_source["flagged"] = issues.groupby("source").size()
        by_source = by_source.fillna(0).astype(int).reset_index()
        by_source["flagged_share"] = by_source["flagged"] / by_source["reviewed"]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(issues),
                "rows_reviewed": len(rows),
                "flagged_annotations": int((issues["source"] == "annotation").sum()),
                "flagged_weak_labels": int((issues["source"] == "weak").sum()),
                "by_source": df_markdown(by_source),
                "worst_labels": df_markdown(issues.head(REVIEW_SHOWN)) if len(issues) else None,
                "skipped": skipped,
            }
        )

    return label_review
