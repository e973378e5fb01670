"""Every synthesizer of the spec fits, is versioned, and samples conditionally within the constraints
(tiny rows and epochs: torch runs on the CPU)."""

import numpy as np
import pandas as pd
import pytest

from mlinfra_assets.synthetic.sampling import sample_batches, sample_rows
from mlinfra_assets.synthetic.synthesizer import fit_or_reuse, load
from tests.synthetic.test_inputs import _frame, _spec

CONSTRAINTS = ["amount >= 3", "amount_vs_avg >= 0"]


@pytest.mark.parametrize("name", ["gaussian_copula", "ctgan", "tvae", "copula_gan"])
def test_synthesizer_samples_each_class_within_constraints(name, tmp_path):
    spec = _spec(synthesizer=name, epochs=1, batch_rows=40, constraints=CONSTRAINTS)
    frame = _frame(200)
    frame["amount"] = frame["amount"] + 3  # the fit rows meet `amount >= 3`
    fit = fit_or_reuse(frame, spec, tmp_path)
    assert not fit.reused and fit.path.exists()
    model = load(fit.path)
    assert type(model.synthesizer).__name__.lower().replace("synthesizer", "") == name.replace("_", "")
    batches = list(sample_batches(model, spec, {1: 90}))
    assert [len(b) for b in batches] == [40, 40, 10]  # bounded batches of synthetic.batch_rows
    rows = pd.concat(batches)
    assert (rows["_label"] == 1).all() and list(rows.columns) == [*spec.feature_columns, "_label"]
    assert (rows["amount"] >= 3).all() and (rows["amount_vs_avg"] >= 0).all()
    assert set(sample_rows(model, spec, 30)["_label"]) <= {"legit", "fraud"}


def test_refit_only_when_data_or_settings_change(tmp_path):
    spec, frame = _spec(), _frame(200)
    first = fit_or_reuse(frame, spec, tmp_path)
    assert fit_or_reuse(frame, spec, tmp_path).reused
    assert fit_or_reuse(frame, _spec(quality_threshold=0.5), tmp_path).version == first.version
    changed = frame.copy()
    changed.loc[0, "amount"] += 1
    assert not fit_or_reuse(changed, spec, tmp_path).reused
    assert fit_or_reuse(frame, _spec(constraints=["amount >= 0"]), tmp_path).version != first.version


def test_fit_rows_breaking_a_constraint_are_named(tmp_path):
    frame = _frame(100)
    frame.loc[0, "amount"] = -1.0
    with pytest.raises(ValueError, match=r"synthetic.constraints 'amount >= 0': 1 fit rows break it"):
        fit_or_reuse(frame, _spec(constraints=["amount >= 0"]), tmp_path)
    assert not np.isnan(frame["amount"]).any()
