"""The Dagster-free core: soft-target loss, class weights, validation split, training, metrics, gate."""

import numpy as np
import pandas as pd
import pytest
import torch

from mlinfra_assets.training import evaluation, metrics
from mlinfra_assets.training.trainer import (
    TrainConfig,
    class_weights,
    soft_cross_entropy,
    train,
    validation_mask,
)
from tests.training.conftest import training_spec


def _frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Rows whose class follows amount and channel, with soft weak targets and a few gold rows."""
    spec = training_spec()
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.normal(size=n) for c in spec.numeric})
    df["channel"] = rng.choice(["pos", "online", "atm"], n)
    df["merchant_category"] = rng.choice(["grocery", "travel"], n)
    y = ((df["amount"] + (df["channel"] == "online") * 1.5 + rng.normal(0, 0.3, n)) > 2.0).astype(int)
    p = np.where(y == 1, 0.9, 0.05)
    df["prob_legit"], df["prob_fraud"], df["label"] = 1 - p, p, y
    df["source"] = np.where(rng.random(n) < 0.1, "gold", "weak")
    df["weight"] = np.where(df["source"] == "gold", 1.0, 0.5)
    return df


def test_soft_cross_entropy_matches_torch_for_one_hot_targets():
    logits = torch.randn(6, 2)
    labels = torch.tensor([0, 1, 1, 0, 0, 1])
    loss, norm = soft_cross_entropy(logits, torch.nn.functional.one_hot(labels, 2).float(),
                                    torch.ones(6), torch.tensor([1.0, 3.0]))
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor([1.0, 3.0]))
    assert float(loss / norm) == pytest.approx(float(expected), rel=1e-5)


def test_class_weights_balance_the_weighted_soft_mass():
    targets = np.array([[1.0, 0.0]] * 90 + [[0.2, 0.8]] * 10, dtype="float32")
    w = np.ones(100, dtype="float32")
    full = class_weights(targets, w, power=1.0)
    mass = (targets * w[:, None]).sum(axis=0)
    assert full[0] * mass[0] == pytest.approx(full[1] * mass[1])
    assert np.allclose(class_weights(targets, w, power=0.0), 1.0)
    with pytest.raises(ValueError, match="no weight on class index"):
        class_weights(targets[:90], w[:90], power=0.5)


def test_validation_uses_gold_only_when_there_is_enough():
    df = _frame()
    cfg = TrainConfig.from_spec(training_spec())
    mask, kind = validation_mask(df, cfg)
    assert kind.startswith("seeded 10%") and 0.07 < mask.mean() < 0.13
    mask, kind = validation_mask(df, TrainConfig.from_spec(training_spec(), min_gold_validation=50,
                                                            min_gold_positives=5))
    assert kind.startswith("half of the gold") and set(df.loc[mask, "source"]) == {"gold"}


def test_training_learns_and_is_deterministic():
    df, spec = _frame(), training_spec(batch_size=128, epochs=8)
    cfg = TrainConfig.from_spec(spec, patience=10)
    first, second = train(df, spec, cfg, log=lambda _: None), train(df, spec, cfg, log=lambda _: None)
    assert len(first.history) == spec.training.epochs
    assert first.history[-1].train_loss < first.history[0].train_loss
    assert first.best_val_f1 > 0.8
    test = _frame(seed=1)
    probs = first.model.predict_proba(test)
    assert np.array_equal(probs, second.model.predict_proba(test))
    assert metrics.f1_positive(test["label"].to_numpy(), probs.argmax(1), 1) > 0.8
    untrained = train(df, spec, TrainConfig.from_spec(training_spec(epochs=0)), log=lambda _: None)
    assert untrained.history == [] and untrained.best_epoch == 0


def test_metrics_and_slices():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]])
    s = metrics.summary(labels, probs, positive=1)
    assert s["f1"] == pytest.approx(2 / 3) and s["accuracy"] == 0.75
    assert s["pr_auc"] == pytest.approx(5 / 6)  # ranks P, N, P, N
    assert metrics.expected_calibration_error(labels, np.eye(2)[labels]) == 0.0
    assert np.isnan(metrics.pr_auc(np.zeros(3, int), np.ones(3), 1))
    assert np.isnan(metrics.f1_positive(np.zeros(3, int), np.zeros(3, int), 1))  # undefined, not 0
    frame = pd.DataFrame({"label": labels, "channel": ["pos", "pos", "online", "online"]})
    table = metrics.slice_table(frame, probs, 1, ["channel"])
    pos = table[(table["slice_value"] == "pos") & (table["metric"] == "pr_auc")]
    assert pos["value"].isna().all()  # no positive in the slice: undefined, not zero
    assert set(table["slice"]) == {"overall", "channel"}


@pytest.mark.parametrize(
    "challenger,champion,promote",
    [(0.1, None, True), (0.795, 0.8, True), (0.7, 0.8, False), (0.9, 0.8, True)],
)
def test_gate(challenger, champion, promote):
    assert evaluation.gate(challenger, champion, margin=0.01).promote is promote
