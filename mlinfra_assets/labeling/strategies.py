"""Query strategies over modAL learners, scored chunk by chunk so a pool of any size fits.

Per-row strategies (uncertainty, margin, entropy, committee, random) keep only the top
`n` rows while the chunks stream by; ranked batch mode keeps the most uncertain
`RANKED_CANDIDATES_PER_ROW * n` rows and lets `modAL.batch.ranked_batch` pick a diverse
batch among them.
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


@dataclass
class Fitted:
    """A fitted preprocessor and the modAL learner (or committee) a strategy scores with."""

    strategy: str
    preprocess: object  # sklearn ColumnTransformer
    learner: object  # modAL ActiveLearner or Committee
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


def score(fitted: Fitted, frame: pd.DataFrame, chunk_index: int = 0) -> np.ndarray:
    """How much each row would teach the learner (higher first), by modAL's measures."""
    from modAL.disagreement import KL_max_disagreement
    from modAL.uncertainty import classifier_entropy, classifier_margin, classifier_uncertainty

    if fitted.strategy == "random":
        return np.random.default_rng([fitted.seed, chunk_index]).random(len(frame))
    Xt = fitted.preprocess.transform(frame)
    if fitted.strategy == "committee":
        return KL_max_disagreement(fitted.learner, Xt)
    if fitted.strategy == "margin":
        return 1.0 - classifier_margin(fitted.learner, Xt)  # small margin = high score
    if fitted.strategy == "entropy":
        return classifier_entropy(fitted.learner, Xt)
    return classifier_uncertainty(fitted.learner, Xt)  # uncertainty and ranked_batch


def select(fitted: Fitted, chunks: Iterable[pd.DataFrame], n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Stream the pool's chunks (`row_id` + feature columns) and choose `n` rows.

    Returns the batch (`row_id, score, rank`; rank 1 = asked first), every pool row's
    score and row id (in chunk order). Memory: one chunk plus the kept candidates.
    """
    keep = n * (RANKED_CANDIDATES_PER_ROW if fitted.strategy == "ranked_batch" else 1)
    best: pd.DataFrame | None = None
    all_scores, all_ids = [], []
    features = None
    for i, chunk in enumerate(chunks):
        features = features or [c for c in chunk.columns if c != "row_id"]
        s = score(fitted, chunk[features], i)
        all_scores.append(s.astype(np.float32))
        all_ids.append(chunk["row_id"].to_numpy())
        top = np.argsort(-s, kind="stable")[:keep]
        cand = chunk.iloc[top].assign(score=s[top])
        best = cand if best is None else pd.concat([best, cand], ignore_index=True)
        best = best.sort_values("score", ascending=False, kind="stable").head(keep).reset_index(drop=True)
    if best is None or best.empty:
        raise ValueError("the annotation pool is empty: every non-holdout row is labeled or queued")
    if fitted.strategy == "ranked_batch":
        best = _ranked(fitted, best, features, n)
    else:
        best = best.sort_values(["score", "row_id"], ascending=[False, True], ignore_index=True)
    batch = best[["row_id", "score"]].head(n).reset_index(drop=True)
    batch["rank"] = np.arange(1, len(batch) + 1, dtype=np.int32)
    return batch, np.concatenate(all_scores), np.concatenate(all_ids)


def _ranked(fitted: Fitted, cand: pd.DataFrame, features: list[str], n: int) -> pd.DataFrame:
    """modAL's ranked batch mode over the candidates: uncertain and unlike what is labeled."""
    from modAL.batch import ranked_batch
    from modAL.models import ActiveLearner

    labeled = fitted.learner.X_training
    rng = np.random.default_rng(fitted.seed)
    reference = labeled[rng.choice(len(labeled), min(len(labeled), RANKED_REFERENCE_ROWS), replace=False)]
    # the diversity term measures distance to a sample of the labeled rows (bounded cost)
    ref_learner = ActiveLearner(estimator=estimator(fitted.seed))
    ref_learner.X_training = reference
    Xc = fitted.preprocess.transform(cand[features])
    order, _ = ranked_batch(ref_learner, Xc, cand["score"].to_numpy(), n, metric="euclidean", n_jobs=None)
    return cand.iloc[order].reset_index(drop=True)
