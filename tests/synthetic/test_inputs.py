"""Bad input and settings: unknown synthesizer, constraints, all-null/constant/high-cardinality columns,
small classes, metadata overrides."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlinfra_assets.synthetic import constraints
from mlinfra_assets.synthetic.columns import TABLE, build_metadata, plan_columns
from mlinfra_assets.synthetic.sampling import class_plan, rebalance_plan
from tests.conftest import small_spec


def _spec(**synthetic: object):
    base = small_spec().synthetic.model_dump()
    return small_spec(synthetic={**base, **synthetic})


def _frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spec = small_spec()
    frame = pd.DataFrame({c: rng.gamma(2.0, 10.0, rows).round(2) for c in spec.numeric})
    frame["hour"] = rng.integers(0, 24, rows)
    for flag in ["is_foreign", "card_present", "new_device"]:
        frame[flag] = rng.integers(0, 2, rows)
    for column, feature in spec.features.categorical.items():
        frame[column] = rng.choice(feature.values, rows)
    frame["_label"] = rng.choice(["legit", "fraud"], rows, p=[0.7, 0.3])
    return frame


def test_unknown_synthesizer_names_the_setting_and_the_choices():
    with pytest.raises(ValidationError, match=r"synthetic.synthesizer 'gan9000' is unknown: choose one of "
                                              r"gaussian_copula, ctgan, tvae, copula_gan"):
        _spec(synthesizer="gan9000")


def test_constraints_are_parsed_and_checked():
    with pytest.raises(ValidationError, match=r"synthetic.constraints 'amount => 0'"):
        _spec(constraints=["amount => 0"])
    with pytest.raises(ValueError, match=r"synthetic.constraints 'nope >= 0': 'nope' is not a numeric feature"):
        constraints.parse(_spec(constraints=["nope >= 0"]))
    rules = constraints.parse(_spec(constraints=["amount >= 5", "distance_km <= amount"]))
    frame = pd.DataFrame({"amount": [6.0, 4.0, None], "distance_km": [1.0, 1.0, 3.0]})
    assert rules[0].holds(frame).tolist() == [True, False, True]
    with pytest.raises(ValueError, match=r"1 synthetic rows break synthetic.constraints 'amount >= 5'"):
        constraints.check(frame, rules)


def test_unlearnable_columns_are_named_and_filled():
    spec = _spec(max_categories=5)
    frame = _frame()
    frame["distance_km"] = np.nan  # all null
    frame["is_foreign"] = 0  # constant
    frame["merchant_category"] = [f"m{i % 50}" for i in range(len(frame))]  # high cardinality
    plan = plan_columns(frame, spec)
    assert "distance_km" in plan.fixed and plan.fixed["distance_km"] is None
    assert plan.fixed["is_foreign"] == 0 and "merchant_category" in plan.marginal
    assert not {"distance_km", "is_foreign", "merchant_category"} & set(plan.modeled)
    text = "\n".join(plan.warnings)
    assert "feature distance_km is null in every fit row" in text
    assert "feature is_foreign is constant" in text
    assert "feature merchant_category is high-cardinality text (50 distinct values > synthetic.max_categories 5)" in text
    done = plan.complete(frame[plan.modeled].head(40), seed=1)
    assert done["distance_km"].isna().all() and (done["is_foreign"] == 0).all()
    assert set(done["merchant_category"]) <= set(frame["merchant_category"])


def test_small_classes_are_warned_about_and_not_sampled():
    spec = small_spec(classes=["legit", "fraud", "chargeback"])
    counts = {0: 5000, 1: 200, 2: 7}
    plan = rebalance_plan(counts, 0.1, min_rows=30)
    assert 2 not in plan and plan[1] > 0
    classes = class_plan(counts, spec)
    assert classes.rows == plan and classes.sampled == ["fraud"] and classes.skipped == ["chargeback"]
    [warning] = classes.warnings
    assert "class 'chargeback' has 7 labeled rows < synthetic.min_class_rows 30" in warning
    assert classes.table.set_index("class").status.to_dict() == {
        "legit": "not needed: share >= synthetic.target_share 0.1",
        "fraud": "sampled",
        "chargeback": "skipped: 7 labeled rows < synthetic.min_class_rows 30",
    }
    assert classes.problem is None


def test_an_unreachable_target_share_samples_nothing_and_says_why():
    spec = small_spec(classes=[f"c{i}" for i in range(10)], positive_class=None,
                      synthetic={**small_spec().synthetic.model_dump(), "target_share": 0.2})
    counts = {0: 3000, **{c: 100 for c in range(1, 10)}}  # nine classes under 20%: 9 * 0.2 > 1
    classes = class_plan(counts, spec)
    assert classes.rows == {} and classes.sampled == []
    assert "9 minority classes at synthetic.target_share 0.2" in classes.problem
    assert set(classes.table.status[1:]) == {"not sampled: synthetic.target_share cannot be reached"}


def test_metadata_overrides_apply_and_unknown_columns_are_named():
    frame = _frame()
    metadata = build_metadata(frame, _spec(metadata={"hour": "categorical"}))
    columns = metadata.tables[TABLE].columns
    assert columns["hour"]["sdtype"] == "categorical" and columns["amount"]["sdtype"] == "numerical"
    assert columns["channel"]["sdtype"] == "categorical" and metadata.tables[TABLE].primary_key is None
    with pytest.raises(ValueError, match=r"synthetic.metadata.tip: not a feature of the spec"):
        build_metadata(frame, _spec(metadata={"tip": "numerical"}))


