"""Label model: 3-class stage run with mixed LF forms, class balance sources, the majority-vote check."""

import numpy as np
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.labeling.assets.weak_labels import LM_VS_MV_CHECK
from mlinfra_assets.labeling.label_model import fit, proportional_rows
from mlinfra_assets.runner import run_assets
from tests.labeling.conftest import labeling_spec, metadata, sql

THREE = ["low", "mid", "high"]
SPEND_GOLD = """CREATE SCHEMA IF NOT EXISTS oracle;
CREATE OR REPLACE TABLE oracle.spend AS SELECT txn_id,
  CASE WHEN amount_vs_avg < 1 THEN 0 WHEN amount_vs_avg < 2.5 THEN 1 ELSE 2 END AS label
FROM raw.transactions"""


def check_result(result):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == LM_VS_MV_CHECK]
    return evaluation


def test_three_class_stage_with_mixed_forms(resources):
    import duckdb

    spec = labeling_spec(
        classes=THREE, positive_class="high", labeling_functions="tests.labeling.lf_modules_three_class",
        gold={"table": "oracle.spend", "column": "label", "id_column": "txn_id"}, annotator={"simulated": False},
    )
    with duckdb.connect(resources["warehouse"].path) as con:
        con.execute(SPEND_GOLD)
    result = run_assets(spec, resources, selection=[keys.GOLD, keys.LABEL_MATRIX, keys.WEAK_LABELS, keys.LF_SUMMARY])
    matrix = metadata(result, keys.LABEL_MATRIX)
    assert (matrix["lfs_sql"], matrix["lfs_vectorized"], matrix["lfs_rowwise"]) == (2, 2, 2)
    labels = dict(sql(resources, "SELECT label, count(*) FROM labeling.weak_labels GROUP BY label"))
    assert set(labels) == {0, 1, 2}
    probs = pd.DataFrame(sql(resources, "SELECT prob_low, prob_mid, prob_high FROM labeling.weak_labels"))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    weak = metadata(result, keys.WEAK_LABELS)
    assert weak["class_balance_source"] == "majority_vote"  # no prior in the module or spec: estimated
    voted = sql(resources, "SELECT count(*) FROM labeling.label_matrix WHERE NOT (small = -1 AND foreign_large = -1 "
                "AND medium = -1 AND routine = -1 AND large = -1 AND card_present_small = -1)")[0][0]
    assert weak["dagster/row_count"] == voted and weak["rows_without_votes"] == 8000 - voted
    from mlinfra_assets.holdout import holdout_predicate

    voted_outside_holdout = sql(
        resources, "SELECT count(*) FROM labeling.label_matrix WHERE NOT (small = -1 AND foreign_large = -1 "
        "AND medium = -1 AND routine = -1 AND large = -1 AND card_present_small = -1) "
        f"AND NOT {holdout_predicate(spec, 'row_id')}")[0][0]
    # judged on the gold rows outside the evaluation holdout
    assert weak["gold_label_model_accuracy"] > 0.8 and weak["gold_rows"] == voted_outside_holdout < voted
    # the better of the two on the spec's metric (macro-F1 for three classes) wrote the labels
    assert spec.metric == "macro_f1"
    lm, mv = weak["label_model_macro_f1"], weak["majority_vote_macro_f1"]
    assert weak["label_model_choice"] == ("majority_vote" if mv > lm else "label_model")
    polarity = dict(sql(resources, "SELECT lf, polarity FROM labeling.lf_summary"))
    assert polarity == {"small": "low", "foreign_large": "high", "medium": "mid", "routine": "mid",
                        "large": "high", "card_present_small": "low"}
    check = check_result(result)  # the verdict follows the metric's figures of the metadata
    assert check.passed == (lm >= mv)


def test_spec_class_balance_overrides_and_a_bad_one_warns(resources):
    spec = labeling_spec(labeling={"class_balance": [0.1, 0.9]})  # fraud is ~1.5%, not 90%
    result = run_assets(spec, resources, selection=[keys.GOLD, keys.LABEL_MATRIX, keys.WEAK_LABELS])
    weak = metadata(result, keys.WEAK_LABELS)
    assert weak["class_balance_source"] == "spec" and weak["class_balance"] == "[0.1, 0.9]"
    check = check_result(result)
    assert not check.passed and check.severity.value == "WARN"
    figures = {k: v.value for k, v in check.metadata.items()}
    assert result.success  # a warning, not a failure
    # ... and the misled label model does not write the weak labels: majority vote does. With
    # fraud at 90% every start labels most rows fraud (LFs below chance): no fit is valid
    assert weak["label_model_choice"] == "majority_vote" and weak["label_model_version"].startswith("mv-")
    assert weak["label_model_rejected_starts"] > 0 and "no valid fit" in weak["label_model_reason"]
    assert check.description == weak["label_model_reason"]
    assert weak["majority_vote_f1"] == figures["gold_f1_majority_vote"] >= weak["label_model_f1"]
    assert figures["weak_labels_by"] == "majority_vote"


def test_fit_on_a_proportional_sample_matches_the_full_fit():
    rng = np.random.default_rng(0)
    truth = rng.random(200_000) < 0.1
    L = np.full((len(truth), 4), -1)
    for j, acc in enumerate([0.9, 0.8, 0.75, 0.7]):
        votes = rng.random(len(truth)) < 0.4
        right = rng.random(len(truth)) < acc
        L[votes, j] = np.where(right[votes], truth[votes], ~truth[votes]).astype(int)
    names = [f"lf{j}" for j in range(4)]
    patterns = pd.DataFrame(L, columns=names).value_counts().rename("n").reset_index()
    assert len(proportional_rows(patterns, names, 1000)) == 1000
    full = fit(patterns, names, ["no", "yes"], [0.9, 0.1], "spec", 10**9, seed=1)
    sample = fit(patterns, names, ["no", "yes"], [0.9, 0.1], "spec", 20_000, seed=1)
    assert sample.fit_rows == 20_000 and full.fit_rows == full.voted_rows
    np.testing.assert_allclose(sample.patterns["prob_yes"], full.patterns["prob_yes"], atol=0.03)
    from snorkel.labeling.model import MajorityLabelVoter

    estimated = fit(patterns, names, ["no", "yes"], None, "", 10**9, seed=1)
    voted = L[(L != -1).any(axis=1)]
    mv = MajorityLabelVoter(cardinality=2).predict_proba(voted).mean(axis=0)
    assert estimated.balance_source == "majority_vote"
    np.testing.assert_allclose(estimated.class_balance, mv, atol=1e-9)
