"""Active learning: a modAL learner, seeded with gold and confident weak labels, picks the
rows to ask people about (strategies in `strategies.py`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlinfra_assets.labeling import strategies
from mlinfra_assets.spec import DatasetSpec

SEED_PER_CLASS = 5_000  # bounds the learner's fit: at most this many seed rows per class
CHUNK_ROWS = 50_000  # pool rows scored at a time (100k: ~1.6x the working memory, no faster; measured)


@dataclass(frozen=True)
class QueryResult:
    """One queried batch and what it was chosen from."""

    batch: pd.DataFrame  # row_id, score, rank (1 = asked first)
    pool_rows: int  # pool rows scored
    score_sample: np.ndarray  # scores of a seeded sample of the pool (all of them on a small pool)
    max_unqueued_score: float | None  # the highest score of a pool row left out of the batch
    seed_counts: dict[str, int]  # seed rows per class
    model_version: str
    strategy: str  # the strategy that chose the batch (random when fewer than two classes are seeded)
    unseeded: list[str]  # classes without a seed row (no gold, no confident weak label)
    note: str | None = None  # why the strategy differs from the one asked for, if it does


def seed_set(
    gold: pd.DataFrame, weak: pd.DataFrame, classes: list[str], seed: int, per_class: int = SEED_PER_CLASS
) -> pd.DataFrame:
    """The learner's training rows: gold labels first, then confident weak labels.

    Each class is sub-sampled (seeded) to `per_class` rows, gold rows kept before weak
    ones. A class with no row is simply absent (`unseeded` names it): the learner scores
    the pool over the classes it has seen, and annotations of the others seed it later.
    """
    weak = weak[~weak["row_id"].isin(gold["row_id"])]
    both = pd.concat([gold.assign(_gold=1), weak.assign(_gold=0)], ignore_index=True)
    rng = np.random.default_rng(seed)
    both["_order"] = rng.random(len(both)) - both["_gold"]  # gold sorts first
    parts = []
    for k in range(len(classes)):
        parts.append(both[both["label"] == k].sort_values("_order").head(per_class))
    return pd.concat(parts, ignore_index=True).drop(columns=["_gold", "_order"])


def unseeded(seed_rows: pd.DataFrame, classes: list[str]) -> list[str]:
    """The classes with no seed row."""
    present = set(seed_rows["label"].astype(int))
    return [cls for k, cls in enumerate(classes) if k not in present]


def pool_chunks(pool: pd.DataFrame, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Split an in-memory pool into chunks (the asset streams them from DuckDB instead)."""
    for start in range(0, len(pool), rows):
        yield pool.iloc[start : start + rows]


def query_batch(
    spec: DatasetSpec,
    seed_rows: pd.DataFrame,
    pool: pd.DataFrame | Iterable[pd.DataFrame],
    n: int,
    strategy: str | None = None,
    seed: int = 0,
) -> QueryResult:
    """Fit the strategy's modAL learner on the seed rows and choose `n` pool rows.

    Parameters
    ----------
    spec
        The dataset spec (feature columns, classes, `active_learning`).
    seed_rows
        `row_id`, feature columns and `label` (class index).
    pool
        `row_id` and the feature columns of the rows that may be queued (never a row
        already labeled or queued): one DataFrame, or an iterable of chunks, e.g. DuckDB
        Arrow record batches (scored one at a time: memory is one chunk plus the kept
        candidates and a bounded score sample, whatever the pool's size; see
        `strategies.select`).
    n
        Batch size; fewer when the pool is smaller.
    strategy
        One of `strategies.STRATEGIES`; default: the spec's `active_learning.strategy`.
    seed
        Seeds the committee's bootstraps, the random baseline and ranked batch's sample.
    """
    strategy = strategy or spec.active_learning.strategy
    chunks = pool_chunks(pool) if isinstance(pool, pd.DataFrame) else pool
    missing = unseeded(seed_rows, spec.classes)
    note = None
    if spec.n_classes - len(missing) < 2 and strategy != "random":
        note = (f"{strategy} needs seed rows of at least two classes, and only "
                f"{spec.n_classes - len(missing)} has one: this batch is drawn at random (seeded); lower "
                "active_learning.seed_confidence, add LFs for the missing classes, or annotate")
        strategy = "random"
    fitted = strategies.fit(
        spec, strategy, seed_rows[spec.feature_columns], seed_rows["label"].to_numpy(), seed,
        spec.active_learning.committee_size,
    )
    chosen = strategies.select(fitted, (c[["row_id", *spec.feature_columns]] for c in chunks), n)
    digest = pd.util.hash_pandas_object(seed_rows[["row_id", "label"]], index=False).to_numpy()
    version = f"al-{strategy}-" + hashlib.sha1(np.sort(digest).tobytes()).hexdigest()[:10]
    counts = {cls: int((seed_rows["label"] == k).sum()) for k, cls in enumerate(spec.classes)}
    return QueryResult(
        chosen.batch, chosen.pool_rows, chosen.score_sample, chosen.max_unqueued_score, counts, version, strategy,
        missing, note,
    )
