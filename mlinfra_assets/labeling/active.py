"""Active learning: a modAL ActiveLearner picks the rows a classifier is least sure of."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec

SEED_PER_CLASS = 5_000  # bounds the learner's fit: at most this many seed rows per class


@dataclass(frozen=True)
class QueryResult:
    """One queried batch and what it was chosen from."""

    batch: pd.DataFrame  # row_id, score, rank (1 = least sure)
    pool_scores: np.ndarray  # the uncertainty of every pool row
    queued: np.ndarray  # bool per pool row: in the batch
    seed_counts: dict[str, int]  # seed rows per class
    model_version: str


def classifier(spec: DatasetSpec):  # noqa: ANN201 - an sklearn Pipeline
    """Standardized numeric + one-hot categorical features into a balanced logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if spec.numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), spec.numeric))
    if spec.categorical:
        parts.append(
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                spec.categorical,
            )
        )
    # balanced weights: uncertainty then sits between the classes, not near the rare one
    model = LogisticRegression(max_iter=1000, class_weight="balanced")
    return make_pipeline(ColumnTransformer(parts), model)


def seed_set(
    gold: pd.DataFrame, weak: pd.DataFrame, classes: list[str], seed: int, per_class: int = SEED_PER_CLASS
) -> pd.DataFrame:
    """The learner's training rows: gold labels first, then confident weak labels.

    Each class is sub-sampled (seeded) to `per_class` rows, gold rows kept before weak
    ones. Raises naming the class when one has no row: the learner needs every class.
    """
    weak = weak[~weak["row_id"].isin(gold["row_id"])]
    both = pd.concat([gold.assign(_gold=1), weak.assign(_gold=0)], ignore_index=True)
    rng = np.random.default_rng(seed)
    both["_order"] = rng.random(len(both)) - both["_gold"]  # gold sorts first
    parts = []
    for k, cls in enumerate(classes):
        rows = both[both["label"] == k].sort_values("_order").head(per_class)
        if rows.empty:
            raise ValueError(
                f"active learning has no seed row of class {cls!r}: no gold label and no weak "
                "label with confidence >= active_learning.seed_confidence; lower that setting "
                "or add labeling functions that vote for it"
            )
        parts.append(rows)
    return pd.concat(parts, ignore_index=True).drop(columns=["_gold", "_order"])


def query_batch(
    spec: DatasetSpec, seed_rows: pd.DataFrame, pool: pd.DataFrame, n: int
) -> QueryResult:
    """Fit an ActiveLearner on the seed rows and query `n` pool rows by uncertainty sampling.

    Parameters
    ----------
    spec
        The dataset spec (feature columns, classes).
    seed_rows
        Feature columns and `label` (class index).
    pool
        `row_id` and the feature columns of the rows that may be queued.
    n
        Batch size; fewer when the pool is smaller.
    """
    from modAL.models import ActiveLearner
    from modAL.uncertainty import classifier_uncertainty, uncertainty_sampling

    if pool.empty:
        raise ValueError("the annotation pool is empty: every non-holdout row is labeled or queued")
    features = spec.feature_columns
    learner = ActiveLearner(
        estimator=classifier(spec),
        query_strategy=uncertainty_sampling,
        X_training=seed_rows[features],
        y_training=seed_rows["label"].to_numpy(dtype=np.int64),
    )
    X_pool = pool[features].reset_index(drop=True)
    idx, _ = learner.query(X_pool, n_instances=min(n, len(pool)))
    scores = classifier_uncertainty(learner, X_pool)
    batch = pd.DataFrame({"row_id": pool["row_id"].to_numpy()[idx], "score": scores[idx]})
    batch = batch.sort_values(["score", "row_id"], ascending=[False, True], ignore_index=True)
    batch["rank"] = np.arange(1, len(batch) + 1, dtype=np.int32)
    digest = pd.util.hash_pandas_object(seed_rows[["row_id", "label"]], index=False).to_numpy()
    version = "al-" + hashlib.sha1(np.sort(digest).tobytes()).hexdigest()[:10]
    counts = {cls: int((seed_rows["label"] == k).sum()) for k, cls in enumerate(spec.classes)}
    queued = np.zeros(len(pool), dtype=bool)
    queued[idx] = True
    return QueryResult(batch, scores, queued, counts, version)
