"""Label matrix, label model vs majority vote and single LFs on the oracle, LF loading, LF summary."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from mlinfra_assets import keys
from mlinfra_assets.holdout import holdout_predicate
from mlinfra_assets.labeling.lfs import LabelingFunctionError, load_lfs
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.stage import SHOWN, significant
from tests.conftest import small_spec
from tests.labeling.conftest import metadata, sql, warehouse_assets

# ~450 fraud rows: below ~20k rows (~120 frauds at 8k) F1 differences of a few points are noise
ORACLE_ROWS = 30_000


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory):
    spec = small_spec(rows=ORACLE_ROWS)
    resources = default_resources(tmp_path_factory.mktemp("oracle") / "data")
    selection = [*warehouse_assets(spec), keys.LABEL_MATRIX, keys.WEAK_LABELS, keys.LF_SUMMARY, keys.GOLD_LABELS]
    result = run_assets(spec, resources, selection=selection)
    return spec, resources, result


def _frame(resources, query: str) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    try:
        return con.execute(query).df()
    finally:
        con.close()


def test_label_model_beats_single_lfs_and_majority_vote(oracle_run):
    spec, resources, result = oracle_run
    names = load_lfs(spec).names
    matrix = _frame(resources, "SELECT * FROM labeling.label_matrix")
    weak = _frame(resources, "SELECT * FROM labeling.weak_labels")
    oracle = _frame(resources, "SELECT txn_id AS row_id, label AS gold FROM oracle.labels")
    assert len(matrix) == ORACLE_ROWS and list(matrix.columns) == ["row_id", *names]
    types = dict(sql(resources, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'label_matrix'"))
    assert all(types[n] == "SMALLINT" for n in names)

    voted = (matrix[names] != -1).any(axis=1)
    assert len(weak) == voted.sum()  # rows without a vote are left out
    np.testing.assert_allclose(weak[spec.prob_columns].sum(axis=1), 1.0, atol=1e-6)
    assert (weak["label"] == weak[spec.prob_columns].to_numpy().argmax(axis=1)).all()

    # the platform judges the label model on gold rows outside the evaluation holdout
    outside = _frame(resources, "SELECT row_id FROM labeling.label_matrix "
                                f"WHERE NOT {holdout_predicate(spec, 'row_id')}")
    rows = matrix[voted].merge(weak, on="row_id").merge(oracle, on="row_id").merge(outside, on="row_id")
    assert 0 < len(rows) < voted.sum()
    truth = rows["gold"] == 1
    lm = f1_score(truth, rows["label"] == 1)
    singles = {n: f1_score(truth, rows[n] == 1) for n in names}
    L = rows[names].to_numpy()
    fraud, legit = (L == 1).sum(axis=1), (L == 0).sum(axis=1)
    mv = f1_score(truth, fraud > legit)  # ties abstain
    best = max(singles, key=singles.get)
    assert lm > singles[best] + 0.01, (lm, best, singles[best])
    assert lm >= mv, (lm, mv)
    meta = metadata(result, keys.WEAK_LABELS)
    assert meta["gold_label_model_f1"] == pytest.approx(lm, rel=SHOWN) == meta["label_model_f1"]
    assert meta["gold_majority_vote_f1"] == pytest.approx(mv, rel=SHOWN) == meta["majority_vote_f1"]
    assert meta["label_model_choice"] == "label_model" and meta["label_model_choice_gold"] == "gold"
    assert meta["gold_best_lf"] == best and meta["rows_without_votes"] == ORACLE_ROWS - len(weak)


def test_each_demo_lf_is_better_than_chance(oracle_run):
    spec, resources, result = oracle_run
    rows = _frame(resources, "SELECT * FROM labeling.label_matrix m JOIN oracle.labels o ON o.txn_id = m.row_id")
    base_rate = rows["label"].mean()
    for name in load_lfs(spec).names:
        votes = rows[rows[name] != -1]
        assert len(votes) >= 30, f"{name} hardly ever votes"
        (vote,) = votes[name].unique()
        precision = (votes["label"] == vote).mean()
        chance = base_rate if vote == 1 else 1 - base_rate
        assert precision > (4 * chance if vote == 1 else chance), (name, precision, chance)
    # no annotations yet: the summary's empirical accuracy is NULL, never 0
    summary = _frame(resources, "SELECT * FROM labeling.lf_summary")
    assert summary["emp_acc"].isna().all() and (summary["coverage"] > 0).all()
    assert set(summary["polarity"]) == {"fraud", "legit"}
    assert metadata(result, keys.LF_SUMMARY)["gold_rows"] == 0


def test_lf_module_errors_name_the_module():
    with pytest.raises(LabelingFunctionError, match="mlinfra_assets.no_such_lfs"):
        load_lfs(small_spec(labeling_functions="mlinfra_assets.no_such_lfs"))
    with pytest.raises(LabelingFunctionError, match="mlinfra_assets.holdout.*defines no labeling function"):
        load_lfs(small_spec(labeling_functions="mlinfra_assets.holdout"))
    lfs = load_lfs(small_spec())
    assert len(lfs.lfs) >= 8 and lfs.class_balance == [0.985, 0.015]


def test_the_label_model_agrees_with_its_class_balance_whatever_the_seed(oracle_run):
    """Snorkel's start is a random fraction of mu_init, and on the demo LFs the fitted positive
    share followed it (0.5% to 3.7% over seeds 0-9); the kept start matches the class balance."""
    import duckdb

    from mlinfra_assets.demo.lfs import CLASS_BALANCE
    from mlinfra_assets.labeling import label_model

    spec, resources, result = oracle_run
    names = load_lfs(spec).names
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    patterns = label_model.read_patterns(con, names)
    con.close()
    fits = [label_model.fit(patterns, names, spec.classes, list(CLASS_BALANCE), "lf_module", 100_000, seed)
            for seed in (0, 7, 8)]
    assert len({f.version for f in fits}) == 1 and len({f.init_scale for f in fits}) == 1
    pd.testing.assert_frame_equal(fits[0].patterns, fits[2].patterns)
    assert fits[0].posterior_balance[1] == pytest.approx(CLASS_BALANCE[1], abs=0.002)
    meta = metadata(result, keys.WEAK_LABELS)
    assert meta["label_model_version"] == fits[0].version
    assert meta["label_model_init_scale"] == significant(fits[0].init_scale)


def test_a_fit_of_the_same_votes_is_read_back_and_any_other_input_fits_again(oracle_run):
    """The label model's fit is kept under a key of its inputs: materializing weak_labels again on
    the same label matrix reads it back (the same labels, no 13 starts again); another seed, class
    balance or vote count is another key."""
    import duckdb

    from mlinfra_assets.labeling import fit_cache, label_model

    spec, resources, result = oracle_run
    first = metadata(result, keys.WEAK_LABELS)
    assert first["label_model_fit"].startswith("fitted in ")
    before = _frame(resources, "SELECT * FROM labeling.weak_labels ORDER BY row_id")
    again = run_assets(spec, resources, selection=[keys.WEAK_LABELS])
    meta = metadata(again, keys.WEAK_LABELS)
    assert meta["label_model_fit"].startswith("reused: ")
    assert meta["label_model_version"] == first["label_model_version"]
    pd.testing.assert_frame_equal(_frame(resources, "SELECT * FROM labeling.weak_labels ORDER BY row_id"), before)

    names = load_lfs(spec).names
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    patterns = label_model.read_patterns(con, names)
    con.close()
    args = (patterns, names, spec.classes, [0.985, 0.015], "spec", 100_000, 0)
    key = fit_cache.fit_key(*args)
    assert fit_cache.fit_key(*args) == key
    assert fit_cache.fit_key(*args[:-1], 1) != key
    assert fit_cache.fit_key(patterns, names, spec.classes, [0.98, 0.02], "spec", 100_000, 0) != key
    fewer = patterns.assign(n=patterns["n"].where(patterns.index != 0, patterns["n"] + 1))
    assert fit_cache.fit_key(fewer, *args[1:]) != key
    assert fit_cache.fit_key(patterns.iloc[::-1], *args[1:]) == key  # the patterns' order does not matter
