"""Human-in-the-loop assets: the active-learning queue, annotations, gold labels."""

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.holdout import gold_from
from mlinfra_assets.labeling import active, annotations, labelstudio
from mlinfra_assets.labeling.queries import POOL_BUCKETS, WHOLE_POOL, load_sql, sql_identifiers
from mlinfra_assets.plots import df_markdown, png_markdown
from mlinfra_assets.resources import DataDir, LabelStudio, Warehouse, transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import round_figures

GROUP = "labeling"


def build_annotation_queue(spec: DatasetSpec) -> dg.AssetsDefinition:
    al = spec.active_learning

    @dg.asset(
        key=keys.ANNOTATION_QUEUE,
        deps=[keys.WEAK_LABELS, keys.raw_key(spec)],
        group_name=GROUP,
        kinds={"sklearn", "duckdb"},
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def annotation_queue(
        context: dg.AssetExecutionContext, warehouse: Warehouse, data_dir: DataDir, label_studio: LabelStudio
    ) -> dg.MaterializeResult:
        """Rows for people to label, chosen by a modAL learner seeded with gold labels and
        confident weak labels, with the spec's strategy (`active_learning.strategy`:
        uncertainty, margin, entropy, ranked_batch, committee or random). Each row has its
        `strategy`, `score`, `rank`, `model_version` and `status` (pending, exported,
        labeled, skipped). Every class with a gold or confident weak label is seeded; the
        classes that could not be are named in `unseeded_classes` (with fewer than two seeded
        classes the batch is drawn at random, and `strategy_note` says so). Append-only: a
        row is never queued twice; holdout rows never when the spec has gold (without gold the
        holdout is made of annotated rows, so they are offered too). The
        pool is scored in chunks, so its size only costs time. The pending queue is written
        as Label Studio tasks (`annotations/labelstudio/`) and, with LABEL_STUDIO_URL set,
        pushed to the Label Studio project (status `exported`)."""
        ids = sql_identifiers(spec)
        seed = spec.training.seed
        with warehouse.connect() as con:
            con.execute(load_sql("annotations_table", **ids))
            con.execute(load_sql("queue_table", **ids))
            weak_version = con.execute("SELECT any_value(label_model_version) FROM labeling.weak_labels").fetchall()[0][0]
            has_gold = _exists(con, "labeling.gold_labels")
            gold_fp = con.execute(load_sql("gold_fingerprint")).fetchall()[0] if has_gold else (0, 0)
            size_key = al.batch_size if al.batch_share == 0 else f"{al.batch_size}:{al.batch_share}:{al.max_batch_size}"
            key = f"{weak_version}|{gold_fp}|{al.strategy}|{size_key}|{al.seed_confidence}|{seed}"
            batch_id = "b-" + hashlib.sha1(key.encode()).hexdigest()[:12]
            done = con.execute("SELECT count(*) FROM labeling.annotation_queue WHERE batch_id = ?", [batch_id]).fetchall()[0][0]
            result, started = None, time.monotonic()
            if not done:
                per_class = active.SEED_PER_CLASS
                weak = con.execute(load_sql("seed_weak", **ids), [al.seed_confidence, seed, per_class]).df()
                gold = con.execute(load_sql("seed_gold", **ids)).df() if has_gold else weak.iloc[:0]
                seed_rows = active.seed_set(gold, weak, spec.classes, seed)
                pool = load_sql("pool", **ids)
                eligible = con.execute(f"SELECT count(*) FROM ({pool})", WHOLE_POOL).fetchall()[0][0]
                keep = pool_keep(eligible, al.max_pool_rows)
                pool_sql = con.sql(pool, params=[int(batch_id[2:10], 16), keep])
                reader = pool_sql.to_arrow_reader(active.CHUNK_ROWS)
                chunks = (b.to_pandas() for b in reader)
                result = active.query_batch(spec, seed_rows, chunks, al.batch_rows(eligible), al.strategy, seed)
                with transaction(con, _batch=result.batch):
                    con.execute(
                        load_sql("queue_insert"),
                        [result.strategy, result.model_version, batch_id, datetime.now(), batch_id],
                    )
        query_s = time.monotonic() - started
        export = _export_queue(context, spec, warehouse, data_dir, label_studio)
        status = warehouse.query_df(
            "SELECT status, count(*) AS rows FROM labeling.annotation_queue GROUP BY 1 ORDER BY 1"
        )
        metadata = {
            "dagster/row_count": int(status["rows"].sum()),
            "batch_id": batch_id,
            "strategy": al.strategy if result is None else result.strategy,
            "batch_rows": 0 if result is None else len(result.batch),
            "already_queued": bool(done),
            "status": df_markdown(status),
            "gold_rows_seen": int(gold_fp[0]),
            **export,
        }
        if result is not None:
            metadata |= _query_metadata(result, query_s) | {
                "eligible_pool_rows": eligible, "pool_sampled": keep < POOL_BUCKETS,
                "batch_size_rule": _batch_rule(al, eligible),
            }
            context.log.info(f"queued {len(result.batch)} rows as {batch_id} ({result.strategy})")
            if result.unseeded:
                context.log.warning(
                    f"active learning could not seed class(es) {result.unseeded}: no gold label and no weak label "
                    f"with confidence >= {al.seed_confidence} (active_learning.seed_confidence)"
                )
            if result.note:
                context.log.warning(result.note)
        else:
            context.log.info(f"batch {batch_id} is already in the queue: nothing added")
        if spec.demo is not None:  # the demo's benchmark curves describe the demo's data only
            from mlinfra_assets.demo.curves import curves_markdown

            curves = curves_markdown()
            if curves is not None:
                metadata["learning_curves"] = curves
        return dg.MaterializeResult(metadata=metadata)

    return annotation_queue


def _batch_rule(al, eligible: int) -> str:  # noqa: ANN001 - spec.ActiveLearning
    """Why the batch has its size, in the spec's words."""
    rows = al.batch_rows(eligible)
    if al.batch_share == 0:
        return f"{rows:,} rows: active_learning.batch_size (batch_share 0)"
    share = round(al.batch_share * eligible)
    bound = ("" if rows == share else
             f", raised to batch_size {rows:,}" if rows > share else
             f", capped at {rows:,} (max_batch_size)")
    return f"{rows:,} rows: batch_share {al.batch_share:g} of {eligible:,} eligible rows = {share:,}{bound}"


def pool_keep(eligible: int, max_rows: int) -> int:
    """How many of POOL_BUCKETS hash buckets the pool sample keeps: all of them when the pool
    fits in `max_rows`, else about max_rows / eligible of them (at least one)."""
    if eligible <= max_rows:
        return POOL_BUCKETS
    return max(1, POOL_BUCKETS * max_rows // eligible)


def _export_queue(context, spec, warehouse, data_dir, label_studio) -> dict:  # noqa: ANN001
    """Write the pending queue as Label Studio tasks; push new ones when a server is configured."""
    cols = ", ".join(f"r.{c}" for c in spec.feature_columns)
    sql = load_sql("queue_open", id_column=spec.id_column, raw_table=spec.raw_table, features=cols)
    rows = warehouse.query_df(sql)
    task_file, _ = labelstudio.write_tasks(spec, rows, Path(data_dir.root) / "annotations" / "labelstudio")
    out = {"tasks_file": dg.MetadataValue.path(str(task_file)), "tasks_open": len(rows), "pushed_to_label_studio": 0}
    if not label_studio.configured:
        return out
    fresh = rows[rows["status"] == "pending"]
    client = label_studio.client()
    pid = labelstudio.project_id(client, spec, label_studio.project_title)
    pushed = labelstudio.push(client, pid, spec, fresh)
    with warehouse.connect() as con, transaction(con, _pushed=fresh[["row_id"]]):
        con.execute(load_sql("mark_exported"))
    context.log.info(f"pushed {pushed} tasks to Label Studio project {pid}")
    return out | {"pushed_to_label_studio": pushed, "label_studio_project": pid}


def _query_metadata(result: active.QueryResult, query_s: float) -> dict:
    scores = result.score_sample  # every pool score on a small pool, a seeded sample on a big one
    threshold = float(result.batch["score"].min())

    def draw(ax) -> None:  # noqa: ANN001
        ax.hist(scores, bins=50, color="C0")
        ax.axvline(threshold, color="C3", label="lowest queued score")
        ax.set_xlabel(f"{result.strategy} score ({len(scores):,} of {result.pool_rows:,} pool rows)")
        ax.set_yscale("log")
        ax.legend(fontsize=7)

    return {
        "pool_rows": result.pool_rows,
        "query_seconds": round(query_s, 2),
        "model_version": result.model_version,
        "seed_rows": df_markdown(pd.DataFrame({"class": list(result.seed_counts), "rows": list(result.seed_counts.values())})),
        "seeded_classes": len(result.seed_counts) - len(result.unseeded),
        "unseeded_classes": ", ".join(result.unseeded) if result.unseeded else "none: every class is seeded",
        "strategy_note": result.note or "as configured",
        "queued_min_score": threshold,
        "queued_max_score": float(result.batch["score"].max()),
        "pool_max_unqueued_score": result.max_unqueued_score,
        "pool_median_score": float(pd.Series(scores).median()),
        "score_plot": png_markdown(draw, f"{result.strategy} scores over the pool"),
    }


class AnnotationsConfig(dg.Config):
    """Launch config: land only these inbox files (plain names); empty = every file."""

    files: list[str] = []


def build_annotations(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=keys.ANNOTATIONS,
        deps=[keys.ANNOTATION_QUEUE, keys.raw_key(spec)],
        group_name=GROUP,
        kinds={"duckdb", "csv"},
        pool=keys.WAREHOUSE_POOL,
    )
    @round_figures
    def annotations_(
        context: dg.AssetExecutionContext,
        config: AnnotationsConfig,
        warehouse: Warehouse,
        data_dir: DataDir,
        label_studio: LabelStudio,
    ) -> dg.MaterializeResult:
        """Human labels, append-only (`row_id, label, annotator, source, file, created_at`).
        Every file in the annotation inbox lands here once: CSV (`row_id,label,annotator`)
        or a Label Studio JSON export; a bad file moves to `rejected/` with a `.reason` file
        and stores nothing. With LABEL_STUDIO_URL set, the project's export is pulled into
        the inbox first; with `annotator.simulated`, the simulated annotator answers the
        open queue into the inbox too, so every label takes the same path. The terminal
        labeler (`mlinfra label`) writes here directly. Rows on which annotators disagree
        are resolved and reported by gold_labels (rule in its description)."""
        ann, simulated, pulled = spec.annotator, 0, None
        if label_studio.configured:
            client = label_studio.client()
            pid = labelstudio.project_id(client, spec, label_studio.project_title)
            content = labelstudio.pull(client, pid)
            target = data_dir.inbox / labelstudio.export_name(pid, content)
            already = (data_dir.processed / target.name).exists() or target.exists()
            if json.loads(content) and not already:
                annotations.write_file(content, target)
                pulled = target.name
        if ann.simulated:
            ids = sql_identifiers(spec)
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
        only = config.files or None
        with warehouse.connect() as con:
            report = annotations.ingest_inbox(con, spec, data_dir.inbox, data_dir.processed, data_dir.rejected, only)
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
                "label_studio_export": pulled,
                "by_annotator": df_markdown(by_annotator),
                "rejected_files": df_markdown(pd.DataFrame(report.rejected, columns=["file", "reason"]))
                if report.rejected
                else None,
            }
        )

    return annotations_


def _exists(con, qualified: str) -> bool:  # noqa: ANN001
    schema, table = qualified.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )
