"""Query strategies over modAL learners, scored chunk by chunk so a pool of any size fits.

Memory is bounded by the chunk and the batch, not by the pool: while the chunks stream by,
the per-row strategies (uncertainty, margin, entropy, committee, random) keep only a
running top `n`; ranked batch mode keeps the `RANKED_CANDIDATES_PER_ROW * n` most
uncertain rows and runs modAL's diversity step (`modAL.batch.ranked_batch`) on that
bounded candidate set only, measuring distances to at most `RANKED_REFERENCE_ROWS`
labeled rows. Beside the batch, a seeded sample of at most `SAMPLE_SCORES` pool scores
(every score on a smaller pool) describes the pool's score distribution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec

STRATEGIES = ("uncertainty", "margin", "entropy", "ranked_batch", "committee", "random")
RANKED_CANDIDATES_PER_ROW = 4  # ranked batch picks among the 4n most uncertain rows
RANKED_REFERENCE_ROWS = 500  # labeled rows the diversity term measures distance to
SAMPLE_SCORES = 100_000  # pool scores kept to describe the pool (histogram, median)
_SAMPLE_SALT = 0x5EED5A3B1E  # the sample's hash of row ids does not depend on the strategy's seed


@dataclass
class Fitted:
    """A fitted preprocessor and the modAL learner (or committee) a strategy scores with."""

    strategy: str
    preprocess: object  # sklearn ColumnTransformer (None for random)
    learner: object  # modAL ActiveLearner or Committee (None for random)
    seed: int

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities of the learner for a frame of feature columns."""
        return self.learner.predict_proba(self.preprocess.transform(frame))


def preprocessor(spec: DatasetSpec):  # noqa: ANN201 - an sklearn ColumnTransformer
    """Standardized numeric + one-hot categorical features (dense, for distances)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if spec.numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), spec.numeric))
    if spec.categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        impute = SimpleImputer(strategy="constant", fill_value="(missing)")
        parts.append(("cat", make_pipeline(impute, encoder), spec.categorical))
    return ColumnTransformer(parts)


def estimator(seed: int = 0):  # noqa: ANN201 - an sklearn classifier
    """Balanced logistic regression: uncertainty then sits between the classes, not near the rare one."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, class_weight="balanced", random_state=seed)


def fit(spec: DatasetSpec, strategy: str, X: pd.DataFrame, y: np.ndarray, seed: int,
        committee_size: int = 5) -> Fitted:
    """Fit the preprocessor and the strategy's modAL learner (a committee of bootstrapped
    learners for `committee`) on labeled rows `X` (feature columns) and `y` (class indexes).

    Retraining builds a new learner: modAL 0.4's `teach()` passes an argument newer
    scikit-learn removed.
    """
    from modAL.models import ActiveLearner, Committee

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown active-learning strategy {strategy!r}: use one of {STRATEGIES}")
    if strategy == "random":  # draws by row id: no learner, so it needs no seed row of any class
        return Fitted(strategy, None, None, seed)
    prep = preprocessor(spec).fit(X)
    Xt = prep.transform(X)
    y = np.asarray(y, dtype=np.int64)
    if strategy != "committee":
        return Fitted(strategy, prep, ActiveLearner(estimator=estimator(seed), X_training=Xt, y_training=y), seed)
    rng = np.random.default_rng(seed)
    members = []
    for k in range(committee_size):
        # a bootstrap sample that keeps every class (stratified resampling)
        idx = np.concatenate([rng.choice(np.flatnonzero(y == c), (y == c).sum()) for c in np.unique(y)])
        members.append(ActiveLearner(estimator=estimator(seed + k), X_training=Xt[idx], y_training=y[idx]))
    return Fitted(strategy, prep, Committee(learner_list=members), seed)


def uniform_by_id(ids: np.ndarray, seed: int) -> np.ndarray:
    """A seeded uniform draw in [0, 1) per row id: the same draw whatever the chunking."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iub":
        h = pd.util.hash_array(ids.astype(np.int64))  # splitmix64 finalizer of the value
    elif ids.dtype.kind in "fMm":
        h = pd.util.hash_array(ids)
    else:
        h = pd.util.hash_array(ids.astype(object), hash_key="mlinfra-al-pool!")
    salt = pd.util.hash_array(np.array([seed], dtype=np.int64))[0]
    h = pd.util.hash_array((h ^ salt).view(np.int64))  # mix the seed in
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def score(fitted: Fitted, frame: pd.DataFrame, ids: np.ndarray) -> np.ndarray:
    """How much each row would teach the learner (higher first), by modAL's measures.

    `frame` holds the feature columns, `ids` the rows' ids (the random baseline draws by id,
    so its choice does not depend on how the pool is chunked).
    """
    from modAL.disagreement import KL_max_disagreement
    from modAL.uncertainty import classifier_entropy, classifier_margin, classifier_uncertainty

    if fitted.strategy == "random":
        return uniform_by_id(ids, fitted.seed)
    Xt = fitted.preprocess.transform(frame)
    if fitted.strategy == "committee":
        return KL_max_disagreement(fitted.learner, Xt)
    if fitted.strategy == "margin":
        return 1.0 - classifier_margin(fitted.learner, Xt)  # small margin = high score
    if fitted.strategy == "entropy":
        return classifier_entropy(fitted.learner, Xt)
    return classifier_uncertainty(fitted.learner, Xt)  # uncertainty and ranked_batch


@dataclass(frozen=True)
class Selection:
    """A chosen batch and what describes the pool it came from (bounded in size)."""

    batch: pd.DataFrame  # row_id, score, rank (1 = asked first)
    pool_rows: int  # rows scored
    score_sample: np.ndarray  # float32 scores of a seeded sample of at most SAMPLE_SCORES pool rows
    max_unqueued_score: float | None  # the highest score of a pool row left out of the batch


class _ScoreSample:
    """A uniform sample of at most `size` pool scores: the rows whose id hashes lowest.

    Depends on the row ids only, so any chunking keeps the same rows; every score while the
    pool has at most `size` rows.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.keys = np.empty(0, dtype=np.float64)
        self.scores = np.empty(0, dtype=np.float32)

    def add(self, ids: np.ndarray, scores: np.ndarray) -> None:
        keys = uniform_by_id(ids, _SAMPLE_SALT)
        if len(self.keys) >= self.size:
            inside = keys < self.keys.max()
            keys, scores = keys[inside], scores[inside]
        keys = np.concatenate([self.keys, keys])
        scores = np.concatenate([self.scores, scores.astype(np.float32)])
        if len(keys) > self.size:
            low = np.argpartition(keys, self.size - 1)[: self.size]
            keys, scores = keys[low], scores[low]
        self.keys, self.scores = keys, scores


def select(fitted: Fitted, chunks: Iterable[pd.DataFrame], n: int) -> Selection:
    """Stream the pool's chunks (`row_id` + feature columns) and choose `n` rows.

    Memory: one chunk, the kept candidates (`n`, or `RANKED_CANDIDATES_PER_ROW * n` rows
    with their features for ranked batch mode) and the score sample, whatever the pool's
    size. The candidates are the pool's top rows by (score, then pool order), exactly as
    when the whole pool is scored at once: a per-row strategy's batch is its `n` best rows
    (rank by score, then row id); ranked batch mode runs modAL's diversity step on the
    candidates only. A row id met twice is kept once.

    Runs with one BLAS / OpenMP thread: the products per chunk and ranked batch's distance
    problems are small, and on a busy 2-core machine two threads spinning made ranked
    batch's step ~20x and the scoring ~1.3x slower (measured).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _select(fitted, chunks, n)


def _select(fitted: Fitted, chunks: Iterable[pd.DataFrame], n: int) -> Selection:
    ranked = fitted.strategy == "ranked_batch"
    keep = n * (RANKED_CANDIDATES_PER_ROW if ranked else 1)
    best: pd.DataFrame | None = None  # row_id, score, _pos (+ features for ranked batch)
    sample = _ScoreSample(SAMPLE_SCORES)
    rows, dropped, features = 0, -np.inf, None
    for chunk in chunks:
        if features is None:
            features = [c for c in chunk.columns if c != "row_id"]
        if chunk.empty:
            continue
        ids = chunk["row_id"].to_numpy()
        s = np.asarray(score(fitted, chunk[features], ids), dtype=np.float64)
        sample.add(ids, s)
        # only a row that beats the weakest kept candidate can enter (a tie loses to the earlier row)
        floor = best["score"].iat[-1] if best is not None and len(best) >= keep else -np.inf
        enter = np.flatnonzero(s > floor)
        enter = enter[np.argsort(-s[enter], kind="stable")[:keep]]
        left = np.ones(len(s), dtype=bool)
        left[enter] = False
        if left.any():
            dropped = max(dropped, float(s[left].max()))
        cand = chunk.iloc[enter][["row_id", *(features if ranked else [])]].assign(score=s[enter], _pos=rows + enter)
        rows += len(s)
        merged = cand if best is None else pd.concat([best, cand], ignore_index=True)
        merged = merged.sort_values(["score", "_pos"], ascending=[False, True], kind="stable")
        merged = merged.drop_duplicates("row_id").reset_index(drop=True)
        if len(merged) > keep:
            dropped = max(dropped, float(merged["score"].iat[keep]))
        best = merged.head(keep)
    if best is None or best.empty:
        raise ValueError("the annotation pool is empty: every non-holdout row is labeled or queued")
    if ranked:
        best = _ranked(fitted, best, features, n)
    else:
        best = best.sort_values(["score", "row_id"], ascending=[False, True], ignore_index=True)
    batch = best[["row_id", "score"]].head(n).reset_index(drop=True)
    batch["rank"] = np.arange(1, len(batch) + 1, dtype=np.int32)
    dropped = max(dropped, float(best["score"].iloc[n:].max()) if len(best) > n else -np.inf)
    return Selection(batch, rows, sample.scores, dropped if np.isfinite(dropped) else None)


def _ranked(fitted: Fitted, cand: pd.DataFrame, features: list[str], n: int) -> pd.DataFrame:
    """modAL's ranked batch mode over the bounded candidate set: uncertain and unlike what is
    labeled (distance to a seeded sample of at most RANKED_REFERENCE_ROWS labeled rows)."""
    from modAL.batch import ranked_batch
    from modAL.models import ActiveLearner

    labeled = fitted.learner.X_training
    rng = np.random.default_rng(fitted.seed)
    reference = labeled[rng.choice(len(labeled), min(len(labeled), RANKED_REFERENCE_ROWS), replace=False)]
    ref_learner = ActiveLearner(estimator=estimator(fitted.seed))
    ref_learner.X_training = reference
    Xc = fitted.preprocess.transform(cand[features])
    order, _ = ranked_batch(ref_learner, Xc, cand["score"].to_numpy(), n, metric="euclidean", n_jobs=None)
    return cand.iloc[order].reset_index(drop=True)
