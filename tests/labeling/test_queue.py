"""Active-learning queue: least-sure rows first, holdout and labeled rows excluded, never re-queued."""

import numpy as np
import pandas as pd
import pytest

from mlinfra_assets import keys
from mlinfra_assets.holdout import holdout_predicate
from mlinfra_assets.labeling import active
from mlinfra_assets.runner import run_assets
from tests.labeling.conftest import labeling_spec, metadata, sql

WEAK = [keys.LABEL_MATRIX, keys.WEAK_LABELS]
LOOP = [keys.ANNOTATION_QUEUE, keys.ANNOTATIONS, keys.GOLD_LABELS]


def test_query_batch_picks_the_least_sure_rows():
    spec = labeling_spec()
    rng = np.random.default_rng(0)

    def rows(n: int, start: int) -> pd.DataFrame:
        df = pd.DataFrame({c: rng.normal(size=n) for c in spec.numeric})
        for c in spec.categorical:
            df[c] = rng.choice(spec.features.categorical[c].values, n)
        df["row_id"] = np.arange(start, start + n)
        return df

    seed_rows = rows(400, 0)
    seed_rows["label"] = (seed_rows["amount"] + 0.3 * rng.normal(size=400) > 0).astype(int)
    pool = rows(2000, 10_000)
    result = active.query_batch(spec, seed_rows, pool, n=50)
    assert len(result.batch) == 50 and result.batch["rank"].tolist() == list(range(1, 51))
    queued = pool["row_id"].isin(result.batch["row_id"]).to_numpy()
    assert result.pool_rows == len(pool) and len(result.score_sample) == len(pool)  # a small pool: every score
    assert result.batch["score"].min() >= result.max_unqueued_score
    # least sure = closest to the boundary the seed labels draw (amount = 0)
    assert pool.loc[queued, "amount"].abs().mean() < 0.2 * pool.loc[~queued, "amount"].abs().mean()


def test_seed_set_keeps_the_classes_it_has_and_names_the_others():
    gold = pd.DataFrame({"row_id": [1], "label": [0]})
    weak = pd.DataFrame({"row_id": [2, 3], "label": [0, 0]})
    seeds = active.seed_set(gold, weak, ["legit", "fraud"], seed=1)
    assert sorted(seeds["row_id"]) == [1, 2, 3]
    assert active.unseeded(seeds, ["legit", "fraud"]) == ["fraud"]


def test_queue_is_uncertain_never_requeues_and_skips_holdout(resources):
    spec = labeling_spec()
    batch = spec.active_learning.batch_size
    first = run_assets(spec, resources, selection=[*WEAK, keys.ANNOTATION_QUEUE])
    meta = metadata(first, keys.ANNOTATION_QUEUE)
    assert meta["batch_rows"] == batch and not meta["already_queued"]
    assert meta["queued_min_score"] >= meta["pool_max_unqueued_score"]
    assert meta["queued_min_score"] > 10 * meta["pool_median_score"]

    # the same inputs are the same batch: nothing added
    again = run_assets(spec, resources, selection=[keys.ANNOTATION_QUEUE])
    assert metadata(again, keys.ANNOTATION_QUEUE)["already_queued"]
    assert sql(resources, "SELECT count(*) FROM labeling.annotation_queue") == [(batch,)]

    # answers land (simulated annotator), new gold labels: the next batch holds new rows only
    run_assets(spec, resources, selection=LOOP)
    assert sql(resources, "SELECT DISTINCT status FROM labeling.annotation_queue") == [("labeled",)]
    run_assets(spec, resources, selection=[keys.WEAK_LABELS, *LOOP])
    counts = sql(
        resources,
        "SELECT count(*), count(DISTINCT row_id), count(DISTINCT batch_id) FROM labeling.annotation_queue",
    )
    assert counts == [(2 * batch, 2 * batch, 2)]
    holdout = holdout_predicate(spec, "row_id")
    assert sql(resources, f"SELECT count(*) FROM labeling.annotation_queue WHERE {holdout}") == [(0,)]
    assert sql(resources, "SELECT count(*), count(DISTINCT row_id) FROM labeling.annotations") == [
        (2 * batch, 2 * batch)
    ]

    # with gold labels, the LF summary counts each LF's right and wrong votes on them
    run_assets(spec, resources, selection=[keys.LF_SUMMARY])
    summary = dict(
        (r[0], r[1:])
        for r in sql(resources, "SELECT lf, correct, incorrect, emp_acc FROM labeling.lf_summary")
    )
    for lf, (correct, incorrect, emp_acc) in summary.items():
        votes = sql(
            resources,
            f"SELECT count(*) FILTER (m.{lf} = g.label), count(*) FILTER (m.{lf} NOT IN (-1, g.label)) "
            "FROM labeling.label_matrix m JOIN labeling.gold_labels g USING (row_id)",
        )[0]
        if sum(votes) == 0:
            assert correct is None and emp_acc is None, lf
        else:
            assert (correct, incorrect) == votes and emp_acc == pytest.approx(votes[0] / sum(votes)), lf

    # cleanlab reviews the annotations and a sample of weak labels; the review table holds the flagged rows
    review = metadata(run_assets(spec, resources, selection=[keys.LABEL_REVIEW]), keys.LABEL_REVIEW)
    assert review["rows_reviewed"] > 2 * batch
    flagged = sql(resources, "SELECT count(*), count(*) FILTER (source = 'annotation') FROM labeling.label_review")[0]
    assert flagged == (review["dagster/row_count"], review["flagged_annotations"]) and flagged[0] > 0


def test_a_pool_over_max_pool_rows_is_a_uniform_sample_not_its_first_rows(resources):
    spec = labeling_spec()
    spec.active_learning.max_pool_rows = 1500  # of about 7,200 rows that may be queued
    result = run_assets(spec, resources, selection=[*WEAK, keys.ANNOTATION_QUEUE])
    meta = metadata(result, keys.ANNOTATION_QUEUE)
    eligible = meta["eligible_pool_rows"]
    assert eligible > 4 * 1500 and meta["pool_sampled"]
    assert 1200 <= meta["pool_rows"] <= 1800  # about max_pool_rows were scored
    assert meta["batch_rows"] == spec.active_learning.batch_size
    # the sample spans the table: a LIMIT would have offered only the first 1,500 rows in table order
    holdout = holdout_predicate(spec, f"r.{spec.id_column}")
    ids = [r[0] for r in sql(resources, f"SELECT {spec.id_column} FROM {spec.raw_table} AS r WHERE NOT {holdout}")]
    queued = {r[0] for r in sql(resources, "SELECT row_id FROM labeling.annotation_queue")}
    first = set(ids[:1500])
    assert len(queued - first) > 0.5 * len(queued)


def test_the_batch_grows_with_the_pool_within_its_bounds(resources):
    al = labeling_spec().active_learning
    # defaults: 0.1% of the pool, at least 300, at most 5,000 rows
    assert [al.batch_rows(n) for n in (5_000, 200_000, 1_000_000, 10_000_000)] == [300, 300, 1_000, 5_000]
    al.batch_share = 0
    assert al.batch_rows(10_000_000) == al.batch_size  # share 0: the fixed batch of old

    spec = labeling_spec()
    spec.active_learning.batch_size, spec.active_learning.batch_share = 50, 0.05
    meta = metadata(run_assets(spec, resources, selection=[*WEAK, keys.ANNOTATION_QUEUE]), keys.ANNOTATION_QUEUE)
    eligible = meta["eligible_pool_rows"]
    assert eligible > 5_000 and meta["batch_rows"] == round(0.05 * eligible)
    assert meta["batch_size_rule"] == f"{round(0.05 * eligible):,} rows: batch_share 0.05 of {eligible:,} eligible rows = {round(0.05 * eligible):,}"
    assert sql(resources, "SELECT count(*) FROM labeling.annotation_queue") == [(meta["batch_rows"],)]

    spec.active_learning.max_batch_size = 120  # another setting is another batch, capped
    meta = metadata(run_assets(spec, resources, selection=[keys.ANNOTATION_QUEUE]), keys.ANNOTATION_QUEUE)
    assert meta["batch_rows"] == 120 and meta["batch_size_rule"].endswith("capped at 120 (max_batch_size)")
