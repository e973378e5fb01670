"""Human-in-the-loop assets: the active-learning queue, annotations, gold labels."""

import hashlib
from datetime import datetime

import dagster as dg
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.holdout import gold_from, holdout_predicate
from mlinfra_assets.labeling import active, annotations
from mlinfra_assets.labeling.queries import load_sql
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import DataDir, Warehouse
from mlinfra_assets.spec import DatasetSpec

GROUP = "labeling"
MAX_POOL_ROWS = 500_000  # bounds the learner's scoring pass on very large tables


def _idents(spec: DatasetSpec) -> dict[str, str]:
    return {
        "id_column": spec.id_column,
        "raw_table": spec.raw_table,
        "features": ", ".join(f"r.{c}" for c in spec.feature_columns),
        "holdout": holdout_predicate(spec, f"r.{spec.id_column}"),
    }


def build_annotation_queue(spec: DatasetSpec) -> dg.AssetsDefinition:
    al = spec.active_learning

    @dg.asset(
        key=keys.ANNOTATION_QUEUE,
        deps=[keys.WEAK_LABELS, keys.raw_key(spec)],
        group_name=GROUP,
        kinds={"sklearn", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    def annotation_queue(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """Rows for people to label, chosen by a modAL ActiveLearner (uncertainty sampling
        over a logistic regression seeded with gold labels and confident weak labels): the
        rows the model is least sure of, with their `score` (uncertainty) and `rank`.
        Append-only: a row is never queued twice, holdout rows never; `status` turns from
        `pending` to `labeled` when an annotation lands. A re-run with the same weak labels
        and gold labels is the same batch and adds nothing."""
        ids = _idents(spec)
        seed = spec.training.seed
        with warehouse.connect() as con:
            con.execute(load_sql("annotations_table", **ids))
            con.execute(load_sql("queue_table", **ids))
            weak_version = con.execute("SELECT any_value(label_model_version) FROM labeling.weak_labels").fetchall()[0][0]
            has_gold = _exists(con, "labeling.gold_labels")
            gold_fp = con.execute(load_sql("gold_fingerprint")).fetchall()[0] if has_gold else (0, 0)
            key = f"{weak_version}|{gold_fp}|{al.strategy}|{al.batch_size}|{al.seed_confidence}|{seed}"
            batch_id = "b-" + hashlib.sha1(key.encode()).hexdigest()[:12]
            done = con.execute("SELECT count(*) FROM labeling.annotation_queue WHERE batch_id = ?", [batch_id]).fetchall()[0][0]
            if not done:
                per_class = active.SEED_PER_CLASS
                weak = con.execute(load_sql("seed_weak", **ids), [al.seed_confidence, seed, per_class]).df()
                gold = con.execute(load_sql("seed_gold", **ids)).df() if has_gold else weak.iloc[:0]
                pool = con.execute(load_sql("pool", **ids), [seed, MAX_POOL_ROWS]).df()
        result = None
        if not done:
            seed_rows = active.seed_set(gold, weak, spec.classes, seed)
            result = active.query_batch(spec, seed_rows, pool, al.batch_size)
            with warehouse.connect() as con:
                con.register("_batch", result.batch)
                con.execute(
                    load_sql("queue_insert"),
                    [al.strategy, result.model_version, batch_id, datetime.now(), batch_id],
                )
                con.unregister("_batch")
        status = warehouse.query_df(
            "SELECT status, count(*) AS rows FROM labeling.annotation_queue GROUP BY 1 ORDER BY 1"
        )
        total = int(status["rows"].sum())
        metadata = {
            "dagster/row_count": total,
            "batch_id": batch_id,
            "batch_rows": 0 if result is None else len(result.batch),
            "already_queued": bool(done),
            "status": df_markdown(status),
            "gold_rows_seen": int(gold_fp[0]),
        }
        if result is not None:
            metadata |= _query_metadata(result, len(pool))
            context.log.info(f"queued {len(result.batch)} rows as {batch_id}")
        else:
            context.log.info(f"batch {batch_id} is already in the queue: nothing added")
        return dg.MaterializeResult(metadata=metadata)

    return annotation_queue


def _query_metadata(result: active.QueryResult, pool_rows: int) -> dict:
    scores = result.pool_scores
    threshold = float(result.batch["score"].min())
    rest = scores[~result.queued]
    unqueued_max = float(rest.max()) if len(rest) else None

    def draw(ax) -> None:  # noqa: ANN001
        ax.hist(scores, bins=50, color="C0")
        ax.axvline(threshold, color="C3", label="queued above")
        ax.set_xlabel("uncertainty (1 - max probability)")
        ax.set_yscale("log")
        ax.legend(fontsize=7)

    return {
        "pool_rows": pool_rows,
        "model_version": result.model_version,
        "seed_rows": df_markdown(pd.DataFrame({"class": list(result.seed_counts), "rows": list(result.seed_counts.values())})),
        "queued_min_score": threshold,
        "queued_max_score": float(result.batch["score"].max()),
        "pool_max_unqueued_score": unqueued_max,
        "pool_median_score": float(pd.Series(scores).median()),
        "uncertainty_plot": png_markdown(draw, "Uncertainty over the pool"),
    }


def build_annotations(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.ANNOTATIONS,
        deps=[keys.ANNOTATION_QUEUE, keys.raw_key(spec)],
        group_name=GROUP,
        kinds={"duckdb", "csv"},
        pool=keys.WAREHOUSE_POOL,
    )
    def annotations_(context: dg.AssetExecutionContext, warehouse: Warehouse, data_dir: DataDir) -> dg.MaterializeResult:
        """Human labels, append-only (`row_id, label, annotator, source, file, created_at`):
        every CSV dropped into the annotation inbox lands here once, bad files are moved to
        `rejected/` with a reason. With `annotator.simulated`, a simulated annotator first
        answers the pending queue from the spec's gold labels with `annotator.noise_rate`
        noise."""
        ann = spec.annotator
        simulated = 0
        if ann.simulated:
            ids = _idents(spec)
            with warehouse.connect() as con:
                con.execute(load_sql("annotations_table", **ids))
                con.execute(load_sql("queue_table", **ids))
                pending = con.execute(
                    load_sql("pending_with_gold", gold_sql=gold_from(spec)), [ann.name]
                ).df()
            if len(pending):
                answers = annotations.simulate_answers(
                    pending, spec.n_classes, ann.noise_rate, ann.name, spec.training.seed
                )
                path = annotations.write_answers(answers, data_dir.inbox)
                simulated = len(answers)
                context.log.info(f"simulated annotator answered {simulated} rows into {path.name}")
        with warehouse.connect() as con:
            report = annotations.ingest_inbox(con, spec, data_dir.inbox, data_dir.processed, data_dir.rejected)
            total = con.execute("SELECT count(*) FROM labeling.annotations").fetchall()[0][0]
            by_annotator = con.execute(
                "SELECT annotator, source, count(*) AS labels FROM labeling.annotations GROUP BY ALL ORDER BY 1, 2"
            ).df()
        for name, reason in report.rejected:
            context.log.warning(f"rejected {name}: {reason}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": int(total),
                "files_landed": len(report.landed),
                "files_rejected": len(report.rejected),
                "labels_added": report.labels_added,
                "rows_in_files": report.rows_in_files,
                "simulated_answers": simulated,
                "by_annotator": df_markdown(by_annotator),
                "rejected_files": df_markdown(pd.DataFrame(report.rejected, columns=["file", "reason"]))
                if report.rejected
                else None,
            }
        )

    return annotations_


def build_gold_labels(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.GOLD_LABELS,
        deps=[keys.ANNOTATIONS, keys.raw_key(spec)],
        group_name=GROUP,
        kinds={"duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    def gold_labels(warehouse: Warehouse) -> dg.MaterializeResult:
        """A view with one label per annotated row: `row_id, label, n_annotations`.

        Rule: each annotator counts once per row, with their most recent label; the label
        with the most annotators wins; a tie goes to the label given most recently (then
        the lower class index). `n_annotations` counts every stored annotation of the row.
        """
        with warehouse.connect() as con:
            con.execute(load_sql("annotations_table", **_idents(spec)))
            con.execute(load_sql("gold_labels"))
            rows = con.execute("SELECT count(*) FROM labeling.gold_labels").fetchall()[0][0]
            dist = con.execute("SELECT label, count(*) AS rows FROM labeling.gold_labels GROUP BY 1 ORDER BY 1").df()
            multi = con.execute("SELECT count(*) FROM labeling.gold_labels WHERE n_annotations > 1").fetchall()[0][0]
            agree = None
            if spec.gold is not None and _exists(con, spec.gold.table):
                agree = con.execute(load_sql("gold_agreement", gold_sql=gold_from(spec))).fetchall()[0][0]
        dist.insert(0, "class", [spec.classes[int(k)] for k in dist["label"]])
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": int(rows),
                "rows_with_several_annotations": int(multi),
                "class_distribution": df_markdown(dist),
                "agreement_with_spec_gold": None if agree is None else float(agree),
            }
        )

    return gold_labels


def _exists(con, qualified: str) -> bool:  # noqa: ANN001
    schema, table = qualified.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )
