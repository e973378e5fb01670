"""cleanlab label review: flipped labels are flagged, correct ones mostly not."""

import numpy as np
import pandas as pd
import pytest

from mlinfra_assets.labeling import review
from tests.labeling.conftest import labeling_spec

SPEC = labeling_spec()


def test_flipped_labels_are_flagged():
    rng = np.random.default_rng(5)
    n = 1500
    rows = pd.DataFrame({c: rng.normal(size=n) for c in SPEC.numeric})
    for c in SPEC.categorical:
        rows[c] = rng.choice(SPEC.features.categorical[c].values, n)
    truth = (rows["amount"] + rows["distance_km"] > 0).astype(int).to_numpy()
    flipped = rng.random(n) < 0.05
    rows["label"] = np.where(flipped, 1 - truth, truth)
    rows["row_id"] = np.arange(n)
    rows["source"] = np.where(np.arange(n) < 300, "annotation", "weak")
    issues = review.find_issues(SPEC, rows, seed=1)
    found = set(issues["row_id"])
    recall = len(found & set(rows.loc[flipped, "row_id"])) / flipped.sum()
    precision = len(found & set(rows.loc[flipped, "row_id"])) / max(len(found), 1)
    assert recall > 0.7 and precision > 0.6, (recall, precision)
    assert set(issues["source"]) <= {"annotation", "weak"}
    assert issues["label_quality"].is_monotonic_increasing or issues["label_quality"].iloc[0] < 0.5
    assert (issues["given_label"] != issues["suggested_label"]).mean() > 0.9


def test_too_few_labels_of_a_class_is_named():
    rows = pd.DataFrame({c: [0.0] * 12 for c in SPEC.numeric})
    for c in SPEC.categorical:
        rows[c] = SPEC.features.categorical[c].values[0]
    rows["label"] = [0] * 10 + [1] * 2
    with pytest.raises(review.NotEnoughLabels, match="'fraud'"):
        review.out_of_fold_proba(SPEC, rows[SPEC.feature_columns], rows["label"].to_numpy(), 0)
