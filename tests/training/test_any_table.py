"""Tables the demo never saw: 3-class wine and binary breast cancer, the spec's metric, baselines,
the gate on them, no gold (holdout from annotations), and features named like platform columns."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlinfra_assets.training import batches, dataset, decision, evaluation, metrics
from mlinfra_assets.training.figures import draw_loss
from mlinfra_assets.training.trainer import TrainConfig, train
from tests.training.tabular import dataset as load_set
from tests.training.tabular import spec_for, write_warehouse


def _training_frame(frame: pd.DataFrame, spec, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows: a third gold (one-hot), the rest weak (noisy soft targets); test rows)."""
    rng = np.random.default_rng(seed)
    test = rng.random(len(frame)) < 0.3
    train_rows = frame[~test].reset_index(drop=True)
    y, k = train_rows["target"].to_numpy(), spec.n_classes
    gold = rng.random(len(y)) < 1 / 3
    noisy = np.where(rng.random(len(y)) < 0.2, rng.integers(0, k, len(y)), y)
    targets = np.full((len(y), k), 0.2 / (k - 1))
    targets[np.arange(len(y)), noisy] = 0.8
    targets[gold] = np.eye(k)[y[gold]]
    out = train_rows[spec.feature_columns].copy()
    for j, col in enumerate(batches.target_columns(spec)):
        out[col] = targets[:, j]
    out["_label"] = np.where(gold, y, noisy)
    out["_weight"] = np.where(gold, 1.0, 0.5)
    out["_source"] = np.where(gold, "gold", "weak")
    return out, frame[test].reset_index(drop=True)


def test_three_classes_choose_the_epoch_on_macro_f1_and_never_shift_a_logit():
    frame, classes = load_set("wine")
    spec = spec_for("wine", frame, classes)
    assert spec.metric == "macro_f1" and not decision.applies(3, spec.metric)
    rows, test = _training_frame(frame, spec)
    cfg = TrainConfig.from_spec(spec, min_gold_validation=10, min_gold_per_class=3, tune_decision=True, patience=50)
    result = train(rows, spec, cfg, log=lambda _: None)
    assert result.metric == "macro_f1" and result.selected_on == "macro_f1"
    assert result.validation.startswith("gold")
    assert result.decision_shift == 0.0  # no class's logit moved at the others' expense
    scores = [h.val_select for h in result.history]
    assert scores == [h.val_metric for h in result.history]
    keys = [(h.val_select, -h.val_loss) for h in result.history]
    assert result.best_epoch == 1 + max(range(len(keys)), key=lambda i: keys[i])  # the epoch the metric chose
    assert result.best_val_metric == pytest.approx(metrics.macro_f1(result.val_labels, result.val_probs.argmax(1), 3))
    plot = draw_loss(result.history, result.selected_on, result.metric)
    assert plot.lines == ["validation macro-F1 (chooses the epoch)"] and plot.best_epoch == result.best_epoch
    truth = test["target"].to_numpy()
    pred = result.model.predict_proba(test).argmax(1)
    score = metrics.macro_f1(truth, pred, 3)
    base = metrics.baselines("macro_f1", truth, 3, spec.positive_index)
    print(f"wine test macro-F1 {score:.3f}, majority {base['majority']:.3f}, prior {base['prior']:.3f}")
    assert score > base["majority"] + 0.3 and score > base["prior"] + 0.3


def test_binary_keeps_the_positive_class_f1_its_pr_auc_epoch_and_its_decision_shift():
    frame, classes = load_set("breast_cancer")
    spec = spec_for("cancer", frame, classes)
    assert spec.metric == "f1" and decision.applies(2, spec.metric)
    rows, test = _training_frame(frame, spec)
    result = train(rows, spec, TrainConfig.from_spec(spec, min_gold_validation=20, min_gold_positives=5),
                   log=lambda _: None)
    assert result.selected_on == "pr_auc"  # the decision is tuned after the epoch: threshold-free choice
    assert [h.val_select for h in result.history] == [h.val_pr_auc for h in result.history]
    plot = draw_loss(result.history, result.selected_on, result.metric)  # marks the epoch the trainer kept
    assert plot.lines == ["validation PR-AUC (chooses the epoch)", "validation F1"]
    assert plot.best_epoch == result.best_epoch
    assert result.decision_shift != 0.0  # weak rows: the shift flags the label model's positive share
    truth, probs = test["target"].to_numpy(), result.model.predict_proba(test)
    assert metrics.f1_positive(truth, probs.argmax(1), spec.positive_index) > 0.85


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_binary_with_another_metric_chooses_on_it_and_shifts_nothing(metric):
    frame, classes = load_set("breast_cancer")
    spec = spec_for("cancer", frame, classes, training={"epochs": 5, "batch_size": 64, "metric": metric})
    rows, _ = _training_frame(frame, spec)
    result = train(rows, spec, TrainConfig.from_spec(spec), log=lambda _: None)
    assert (result.metric, result.selected_on, result.decision_shift) == (metric, metric, 0.0)


def test_gate_compares_on_the_metric_and_refuses_a_challenger_below_the_majority_class():
    refused = evaluation.gate(0.34, None, 0.01, majority=0.42, metric="accuracy")
    assert not refused.promote
    assert refused.reason == ("accuracy 0.3400 does not beat the majority-class baseline 0.4200: "
                              "the challenger is refused (no champion yet, none is set)")
    kept = evaluation.gate(0.30, 0.80, 0.01, majority=0.35, metric="macro_f1")
    assert not kept.promote and "does not beat the majority-class baseline" in kept.reason
    assert "the champion stays" in kept.reason
    assert evaluation.gate(0.79, 0.80, 0.01, majority=0.35, metric="macro_f1").promote  # within the margin
    assert not evaluation.gate(0.70, 0.80, 0.01, majority=0.35, metric="macro_f1").promote
    assert not evaluation.gate(float("nan"), None, 0.01, majority=0.0).promote  # undefined never promotes
    first = evaluation.gate_not_evaluated(None)
    assert first.promote and first.reason.startswith(
        "not evaluated: no labelled holdout rows; annotate the queue (mlinfra label)")
    assert "becomes champion without evaluation" in first.reason
    later = evaluation.gate_not_evaluated("3")
    assert not later.promote and "the champion (version 3) stays" in later.reason
    assert evaluation.champion_vs_baseline("2", 0.30, 0.42, "accuracy").startswith(
        "WARNING: the champion (version 2) is no better than always answering the most common class")
    assert "beats the majority-class baseline" in evaluation.champion_vs_baseline("2", 0.9, 0.42, "accuracy")


def test_evaluation_table_holds_the_metric_baselines_and_per_class_figures():
    frame, classes = load_set("wine")
    spec = spec_for("wine", frame, classes, training={"epochs": 10, "batch_size": 64})
    rows, test = _training_frame(frame, spec)
    model = train(rows, spec, TrainConfig.from_spec(spec), log=lambda _: None).model
    holdout = test.rename(columns={"target": "_label"})
    scored = evaluation.score(model, holdout, spec)
    overall = scored.table[scored.table["slice"] == "overall"].set_index("metric")["value"]
    assert {"macro_f1", "accuracy", "ece", "rows", "baseline_majority_macro_f1", "baseline_prior_macro_f1"} \
        <= set(overall.index)
    assert "f1" not in overall.index and "pr_auc" not in overall.index  # one class's figures: binary only
    base = metrics.baselines("macro_f1", holdout["_label"].to_numpy(), 3, spec.positive_index)
    assert overall["baseline_majority_macro_f1"] == pytest.approx(base["majority"])
    assert scored.value == pytest.approx(metrics.macro_f1(holdout["_label"].to_numpy(), scored.probs.argmax(1), 3))
    per_class = evaluation.class_overview(scored).set_index("class")
    assert list(per_class.index) == classes and list(per_class.columns) == ["precision", "recall", "f1", "support"]
    assert per_class["support"].sum() == len(holdout)
    assert per_class["f1"].mean() == pytest.approx(scored.value)
    rows_out = evaluation.evaluation_rows(scored, scored, evaluation.gate(scored.value, scored.value, 0.01,
                                                                            base["majority"], "macro_f1"),
                                          pd.Timestamp("2026-01-01"))
    assert "champion_baseline_majority_macro_f1" not in set(rows_out["metric"])
    assert {"champion_macro_f1"} <= set(rows_out["metric"])
    with pytest.raises(ValueError, match="not evaluated: no labelled holdout rows"):
        evaluation.score(model, holdout.iloc[:0], spec)


def test_features_named_weight_label_source_and_row_id_train_like_any_other(tmp_path):
    rename = {"mean_radius": "weight", "mean_texture": "label", "mean_perimeter": "source", "mean_area": "row_id"}
    frame, classes = load_set("breast_cancer", rename)
    spec = spec_for("cancer", frame, classes, training={"epochs": 20, "batch_size": 64, "holdout_percent": 30})
    assert {"weight", "label", "source", "row_id"} <= set(spec.feature_columns)
    path = str(tmp_path / "warehouse.duckdb")
    counts = write_warehouse(path, spec, frame)
    con = duckdb.connect(path)
    try:
        built = dataset.build(con, spec)
        columns = [r[0] for r in con.execute("DESCRIBE training.training_set").fetchall()]
        assert columns == ["_row_id", *spec.feature_columns, "_prob_malignant", "_prob_benign", "_label",
                           "_weight", "_source"]
        assert built == counts["rows"] - counts["holdout"]  # every non-holdout row is weak or gold
        # the user's `weight`, `label`, `source` and `row_id` are the raw values, not the platform's
        mismatched = con.execute(
            f"SELECT count(*) FROM training.training_set t JOIN {spec.raw_table} r "
            "ON CAST(r.item_id AS VARCHAR) = t._row_id WHERE t.weight <> r.weight OR t.label <> r.label "
            "OR t.source <> r.source OR t.row_id <> r.row_id").fetchall()[0][0]
        assert mismatched == 0
        weights = dict(con.execute("SELECT _source, min(_weight) FROM training.training_set GROUP BY 1").fetchall())
        assert weights == {"gold": 1.0, "weak": 0.5}
        data = dataset.load(con, spec)
        holdout = con.execute(dataset.holdout_sql(spec)).df()
    finally:
        con.close()
    assert {"label", "_label", "weight"} <= set(holdout.columns) and len(holdout) == counts["holdout"]
    result = train(data, spec, TrainConfig.from_spec(spec, min_gold_validation=20, min_gold_positives=5),
                   log=lambda _: None)
    pred = result.model.predict_proba(holdout).argmax(1)
    assert metrics.f1_positive(holdout["_label"].to_numpy(), pred, spec.positive_index) > 0.85


def test_synthetic_utility_scores_the_metric_over_the_sampled_classes():
    from mlinfra_assets.synthetic import utility
    from mlinfra_assets.synthetic.data import LABEL

    truth = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    f1 = [metrics.f1_positive(truth, pred, c) for c in range(3)]  # 2/3, 0.8, 2/3
    assert utility.sampled_score("macro_f1", truth, pred, [1, 2], 3, 2) == pytest.approx((f1[1] + f1[2]) / 2)
    assert utility.sampled_score("accuracy", truth, pred, [0], 3, 2) == pytest.approx(0.5)  # rows of class 0
    assert utility.sampled_score("f1", truth, pred, [2], 3, 2) == pytest.approx(f1[2])
    assert np.isnan(utility.sampled_score("f1", truth, pred, [0, 1], 3, 2))  # positive class not sampled
    names = utility.UtilityResult(0.5, 0.6, 0.7, 0.8, 10, 20, metric="macro_f1").scores()["property"].tolist()
    assert names[:2] == ["TSTR Macro-F1", "TRTR Macro-F1"] and "Model Macro-F1 Gain" in names
    assert utility.UtilityResult(0.5, 0.6, 0.7, 0.8, 10, 20).scores()["property"].iloc[0] == "TSTR F1"

    frame, classes = load_set("wine")
    spec = spec_for("wine", frame, classes)
    rows, test = _training_frame(frame, spec)
    real = frame[~frame["item_id"].isin(test["item_id"])]
    real = real[spec.feature_columns].assign(**{LABEL: real["target"].map(dict(enumerate(classes)))})
    synthetic = real[real[LABEL] != classes[1]]  # the synthesizer sampled classes 0 and 2 only
    holdout = test[spec.feature_columns].assign(**{LABEL: test["target"]})
    tstr, trtr = utility.tstr(synthetic, real, holdout, spec)
    # over all three classes a model that never answers class 1 scores at most 2/3 (its F1 there is 0);
    # over the sampled classes it is judged on what it was given
    assert 2 / 3 < tstr < trtr <= 1.0 and trtr > 0.8
