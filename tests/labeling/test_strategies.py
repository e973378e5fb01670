"""Query strategies: each picks informative rows, chunked scoring equals one pass, ranked batch spreads out."""

import numpy as np
import pandas as pd
import pytest

from mlinfra_assets.labeling import active, strategies
from tests.labeling.conftest import labeling_spec, pool_rows

SPEC = labeling_spec()


def _rows(n: int, start: int, rng) -> pd.DataFrame:
    return pool_rows(SPEC, n, start, rng)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    seed_rows = _rows(400, 0, rng)
    seed_rows["label"] = (seed_rows["amount"] + 0.3 * rng.normal(size=400) > 0).astype(int)
    return seed_rows, _rows(6000, 10_000, rng)


@pytest.mark.parametrize("strategy", [s for s in strategies.STRATEGIES if s != "random"])
def test_informed_strategies_ask_near_the_boundary(data, strategy):
    seed_rows, pool = data
    result = active.query_batch(SPEC, seed_rows, pool, n=40, strategy=strategy, seed=1)
    assert len(result.batch) == 40 and result.batch["row_id"].is_unique
    assert result.batch["rank"].tolist() == list(range(1, 41)) and result.strategy == strategy
    near = pool.set_index("row_id").loc[result.batch["row_id"], "amount"].abs().mean()
    assert near < 0.4 * pool["amount"].abs().mean()  # the boundary is amount = 0


def test_random_baseline_is_seeded_and_uninformed(data):
    seed_rows, pool = data
    a = active.query_batch(SPEC, seed_rows, pool, n=200, strategy="random", seed=3)
    b = active.query_batch(SPEC, seed_rows, pool, n=200, strategy="random", seed=3)
    assert a.batch["row_id"].tolist() == b.batch["row_id"].tolist()
    picked = pool.set_index("row_id").loc[a.batch["row_id"], "amount"].abs().mean()
    assert picked > 0.7 * pool["amount"].abs().mean()


def test_chunked_scoring_picks_what_one_pass_picks(data):
    seed_rows, pool = data
    whole = active.query_batch(SPEC, seed_rows, [pool], n=50, strategy="margin")
    chunked = active.query_batch(SPEC, seed_rows, active.pool_chunks(pool, rows=700), n=50, strategy="margin")
    assert whole.batch["row_id"].tolist() == chunked.batch["row_id"].tolist()
    assert np.allclose(np.sort(whole.score_sample), np.sort(chunked.score_sample))
    assert whole.max_unqueued_score == chunked.max_unqueued_score


def test_ranked_batch_is_more_diverse_than_plain_uncertainty(data):
    seed_rows, pool = data

    def spread(strategy: str) -> float:
        ids = active.query_batch(SPEC, seed_rows, pool, n=30, strategy=strategy).batch["row_id"]
        return pool.set_index("row_id").loc[ids, SPEC.numeric].std().mean()

    assert spread("ranked_batch") > spread("uncertainty")


def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="unknown active-learning strategy 'greedy'"):
        strategies.fit(SPEC, "greedy", pd.DataFrame(), np.array([]), 0)
