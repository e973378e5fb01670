"""Chunked queue queries: the same queue as modAL on the whole pool, bounded memory, no row queued twice."""

import tracemalloc

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlinfra_assets.labeling import active, strategies
from mlinfra_assets.labeling.queries import WHOLE_POOL, load_sql, sql_identifiers
from tests.labeling.conftest import labeling_spec, pool_rows

SPEC = labeling_spec()
FEATURES = SPEC.feature_columns
N = 40


def _rows(n: int, start: int, rng: np.random.Generator) -> pd.DataFrame:
    return pool_rows(SPEC, n, start, rng)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    seed_rows = _rows(300, 0, rng)  # under RANKED_REFERENCE_ROWS: ranked batch measures distance to all of them
    seed_rows["label"] = (seed_rows["amount"] + 0.5 * seed_rows["distance_km"] + 0.4 * rng.normal(size=300) > 0).astype(int)
    return seed_rows, _rows(1500, 10_000, rng)


def _fit(seed_rows: pd.DataFrame, strategy: str, seed: int = 2) -> strategies.Fitted:
    """The learner query_batch fits (same spec, rows, seed)."""
    return strategies.fit(
        SPEC, strategy, seed_rows[FEATURES], seed_rows["label"].to_numpy(), seed, SPEC.active_learning.committee_size
    )


def _modal_choice(fitted: strategies.Fitted, pool: pd.DataFrame, n: int) -> np.ndarray:
    """The row ids modAL's own query function picks from the whole pool at once."""
    from modAL.batch import uncertainty_batch_sampling
    from modAL.disagreement import max_disagreement_sampling
    from modAL.uncertainty import entropy_sampling, margin_sampling, uncertainty_sampling

    query = {
        "uncertainty": uncertainty_sampling,
        "margin": margin_sampling,
        "entropy": entropy_sampling,
        "committee": max_disagreement_sampling,
        "ranked_batch": uncertainty_batch_sampling,
    }[fitted.strategy]
    idx = query(fitted.learner, fitted.preprocess.transform(pool[FEATURES]), n_instances=n)
    idx = idx[0] if isinstance(idx, tuple) else idx
    return pool["row_id"].to_numpy()[np.asarray(idx)]


@pytest.mark.parametrize("strategy", ["uncertainty", "margin", "entropy", "committee"])
def test_per_row_strategies_queue_what_modal_picks_from_the_whole_pool(data, strategy):
    seed_rows, pool = data
    result = active.query_batch(SPEC, seed_rows, active.pool_chunks(pool, rows=137), N, strategy, seed=2)
    expected = _modal_choice(_fit(seed_rows, strategy), pool, N)
    assert sorted(result.batch["row_id"]) == sorted(expected)
    assert result.batch["score"].is_monotonic_decreasing and result.batch["rank"].tolist() == list(range(1, N + 1))
    # the score sample holds every score of this small pool; the best row left out is right below the batch
    full = strategies.score(_fit(seed_rows, strategy), pool[FEATURES], pool["row_id"].to_numpy())
    assert result.pool_rows == len(pool)
    assert np.allclose(np.sort(result.score_sample), np.sort(full.astype(np.float32)))
    rest = full[~pool["row_id"].isin(result.batch["row_id"]).to_numpy()]
    assert result.max_unqueued_score == pytest.approx(rest.max()) and result.batch["score"].min() >= rest.max()


def test_ranked_batch_queues_modals_ranked_batch_in_its_order(data):
    seed_rows, pool = data
    small = pool.head(strategies.RANKED_CANDIDATES_PER_ROW * N)  # every row is a candidate: the same problem as modAL's
    result = active.query_batch(SPEC, seed_rows, active.pool_chunks(small, rows=37), N, "ranked_batch", seed=2)
    expected = _modal_choice(_fit(seed_rows, "ranked_batch"), small, N)
    assert result.batch["row_id"].tolist() == expected.tolist()


@pytest.mark.parametrize("strategy", strategies.STRATEGIES)
def test_every_strategy_queues_the_same_whatever_the_chunking(data, strategy):
    seed_rows, pool = data
    fitted = _fit(seed_rows, strategy)
    for rows, chunk_rows in ((pool, 250), (pool.head(300), 1)):
        whole = strategies.select(fitted, [rows], N)
        chunked = strategies.select(fitted, active.pool_chunks(rows, rows=chunk_rows), N)
        # the same rows in the same order; scores equal up to BLAS rounding of the chunk's matrix products
        assert chunked.batch[["row_id", "rank"]].equals(whole.batch[["row_id", "rank"]])
        assert np.allclose(chunked.batch["score"], whole.batch["score"], rtol=1e-12, atol=1e-12)
        assert chunked.max_unqueued_score == pytest.approx(whole.max_unqueued_score, rel=1e-12)
        assert chunked.pool_rows == whole.pool_rows == len(rows)


def test_random_baseline_is_seeded_by_row_id(data):
    seed_rows, pool = data
    fitted = _fit(seed_rows, "random", seed=5)
    a = strategies.select(fitted, active.pool_chunks(pool, rows=100), N).batch["row_id"]
    draw = strategies.uniform_by_id(pool["row_id"].to_numpy(), 5)
    assert a.tolist() == pool["row_id"].to_numpy()[np.argsort(-draw)[:N]].tolist()
    assert 0 <= draw.min() and draw.max() < 1 and abs(draw.mean() - 0.5) < 0.05
    fitted.seed = 6
    assert len(set(a) & set(strategies.select(fitted, [pool], N).batch["row_id"])) < N // 2


def test_score_sample_is_bounded_and_the_same_whatever_the_chunking(data, monkeypatch):
    seed_rows, pool = data
    monkeypatch.setattr(strategies, "SAMPLE_SCORES", 200)
    fitted = _fit(seed_rows, "uncertainty")
    a = strategies.select(fitted, [pool], N).score_sample
    b = strategies.select(fitted, active.pool_chunks(pool, rows=90), N).score_sample
    full = strategies.score(fitted, pool[FEATURES], pool["row_id"].to_numpy()).astype(np.float32)
    assert len(a) == len(b) == 200 and np.array_equal(np.sort(a), np.sort(b)) and np.isin(a, full).all()
    assert abs(np.median(a) - np.median(full)) < 0.25 * np.std(full)  # a uniform sample


@pytest.mark.parametrize("strategy", ["uncertainty", "ranked_batch"])
def test_query_memory_does_not_grow_with_the_pool(data, monkeypatch, strategy):
    """Peak traced memory of a query over 3 and over 48 chunks of 4,000 rows: about the same
    (keeping every score, as before, doubles it; the score sample is capped at 1,000 here)."""
    seed_rows, _ = data
    monkeypatch.setattr(strategies, "SAMPLE_SCORES", 1000)
    fitted = _fit(seed_rows, strategy)

    def peak(chunks: int) -> int:
        rng = np.random.default_rng(0)
        stream = (_rows(4000, 100_000 + 4000 * i, rng) for i in range(chunks))
        tracemalloc.start()
        try:
            selection = strategies.select(fitted, stream, N)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert selection.pool_rows == 4000 * chunks

    peak(2)  # first-call allocations (caches) out of the way
    small, big = peak(3), peak(48)
    assert big < 1.25 * small, (small, big)


def test_pool_query_never_offers_labeled_queued_or_holdout_rows(data, tmp_path):
    """The pool SQL streamed from DuckDB: the rows a first query chose, once queued or labeled, are never chosen again."""
    seed_rows, pool = data
    ids = sql_identifiers(SPEC, FEATURES)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    schema = SPEC.raw_table.split(".")[0]
    con.execute(f"CREATE SCHEMA {schema}")
    raw = pool.rename(columns={"row_id": SPEC.id_column})
    con.register("raw_df", raw)
    con.execute(f"CREATE TABLE {SPEC.raw_table} AS SELECT * FROM raw_df")
    con.execute(load_sql("annotations_table", **ids))
    con.execute(load_sql("queue_table", **ids))

    def query() -> tuple[pd.DataFrame, set]:
        reader = con.sql(load_sql("pool", **ids), params=WHOLE_POOL).to_arrow_reader(200)
        offered: set = set()

        def chunks():
            for b in reader:
                frame = b.to_pandas()
                offered.update(frame["row_id"])
                yield frame

        return active.query_batch(SPEC, seed_rows, chunks(), N, "uncertainty", 2).batch, offered

    first, offered = query()
    holdout = {r[0] for r in con.execute(f"SELECT {SPEC.id_column} FROM {SPEC.raw_table} AS r WHERE {ids['holdout']}").fetchall()}
    assert holdout and not holdout & offered and len(offered) == len(pool) - len(holdout)
    labeled, queued = first["row_id"].head(N // 2), first["row_id"].tail(N // 2)
    con.execute("INSERT INTO labeling.annotations (row_id, label) SELECT unnest(?), 1", [labeled.tolist()])
    con.execute("INSERT INTO labeling.annotation_queue (row_id, status) SELECT unnest(?), 'pending'", [queued.tolist()])
    second, offered = query()
    assert not set(first["row_id"]) & offered and not set(first["row_id"]) & set(second["row_id"])
    assert len(offered) == len(pool) - len(holdout) - N
    con.close()
