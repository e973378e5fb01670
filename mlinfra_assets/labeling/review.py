"""Label review: cleanlab flags annotations and weak labels that are likely wrong.

Out-of-fold probabilities of the active-learning classifier (5-fold cross-validation) go
to `cleanlab.filter.find_label_issues`; each flagged row gets cleanlab's label quality
score and the class the model suggests, worst first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec

FOLDS = 5
REVIEW_COLUMNS = ["row_id", "source", "given_label", "suggested_label", "label_quality", "reviewed_at"]


class NotEnoughLabels(ValueError):
    """Too few labeled rows of some class for cross-validated probabilities."""


def out_of_fold_proba(spec: DatasetSpec, X: pd.DataFrame, y: np.ndarray, seed: int) -> np.ndarray:
    """Class probabilities of each row from a model that never saw it (stratified k-fold)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    from mlinfra_assets.labeling.strategies import estimator, preprocessor

    counts = np.bincount(y, minlength=spec.n_classes)
    if counts.min() < FOLDS:
        short = [spec.classes[k] for k in np.flatnonzero(counts < FOLDS)]
        raise NotEnoughLabels(
            f"label review needs at least {FOLDS} labeled rows of every class; {short} have fewer"
        )
    model = make_pipeline(preprocessor(spec), estimator(seed))
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    return cross_val_predict(model, X, y, cv=folds, method="predict_proba")


def find_issues(spec: DatasetSpec, rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The rows whose label is likely wrong, worst first.

    Parameters
    ----------
    spec
        The dataset spec (features, classes).
    rows
        `row_id`, `source` (`annotation` or `weak`), `label` (class index) and the
        feature columns.
    seed
        Seeds the folds and the classifier.

    Returns
    -------
    DataFrame
        `row_id, source, given_label, suggested_label, label_quality` (class names;
        quality in [0, 1], low = likely wrong).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = rows["label"].to_numpy(dtype=np.int64)
    proba = out_of_fold_proba(spec, rows[spec.feature_columns], y, seed)
    # n_jobs=1: cleanlab's process pool shares its inputs through module globals, which only
    # fork-started workers see; a Dagster step runs in a spawned process (NameError there)
    flagged = find_label_issues(
        labels=y, pred_probs=proba, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    quality = get_label_quality_scores(y, proba)
    classes = np.asarray(spec.classes, dtype=object)
    return pd.DataFrame(
        {
            "row_id": rows["row_id"].to_numpy()[flagged],
            "source": rows["source"].to_numpy()[flagged],
            "given_label": classes[y[flagged]],
            "suggested_label": classes[proba[flagged].argmax(axis=1)],
            "label_quality": quality[flagged],
        }
    )
