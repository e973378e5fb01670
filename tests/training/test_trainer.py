"""The Dagster-free core: soft-target loss, class weights, validation split, training, metrics, gate."""

import numpy as np
import pandas as pd
import pytest
import torch

from mlinfra_assets.training import batches, decision, evaluation, metrics
from mlinfra_assets.training.trainer import (
    TrainConfig,
    cap_synthetic,
    class_weights,
    mixed_batch,
    soft_cross_entropy,
    synthetic_scale,
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
    df["_prob_legit"], df["_prob_fraud"], df["_label"] = 1 - p, p, y
    df["_source"] = np.where(rng.random(n) < 0.1, "gold", "weak")
    df["_weight"] = np.where(df["_source"] == "gold", 1.0, 0.5)
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


def test_synthetic_rows_are_capped_at_their_share_of_each_class():
    df = _frame()
    syn = df[df["_label"] == 1].sample(600, replace=True, random_state=0).assign(
        _source="synthetic", _weight=1.0, _prob_legit=0.0, _prob_fraud=1.0)
    spec = training_spec()
    data = batches.from_frame(pd.concat([df, syn], ignore_index=True), spec)
    real = data.source != batches.SOURCES.index("synthetic")

    def share(d: batches.TrainingArrays, k: int) -> float:
        mass = d.targets[:, k] * d.weights
        return float(mass[~real].sum() / mass.sum())

    assert share(data, 1) > 0.2  # uncapped, the synthetic rows carry more of the fraud class
    scale = synthetic_scale(data, 0.2)
    capped = cap_synthetic(data, scale)
    assert scale[0] == 1.0 and 0 < scale[1] < 1  # only the class where they carry too much
    assert share(capped, 1) == pytest.approx(0.2, rel=1e-4)
    assert np.array_equal(capped.weights[real], data.weights[real])  # real rows keep their weight
    assert np.all(synthetic_scale(data, 1.0) == 1.0)  # 1.0: no cap
    assert np.all(synthetic_scale(data.rows(real), 0.2) == 1.0)  # no synthetic rows: nothing to cap
    assert synthetic_scale(data, 0.9)[1] == 1.0  # a cap above their share does not bind
    result = train(pd.concat([df, syn], ignore_index=True), spec,
                   TrainConfig.from_spec(training_spec(epochs=1), choose_weak=False), log=lambda _: None)
    assert result.synthetic_scale == pytest.approx(scale.tolist())  # the cap of the rows it trained on


def test_without_gold_the_decision_flags_the_label_models_positive_share():
    df = _frame().assign(_source="weak", _weight=0.5)  # no gold row: nothing to tune F1 on
    spec = training_spec(batch_size=128, epochs=3)
    result = train(df, spec, TrainConfig.from_spec(spec), log=lambda _: None)
    flagged = (result.model.predict_proba(df).argmax(1) == 1).mean()
    assert result.decision_shift != 0.0
    assert flagged == pytest.approx(df["_prob_fraud"].mean(), abs=0.01)  # the weak rows' mean soft target
    kept = train(df, spec, TrainConfig.from_spec(spec, tune_decision=False), log=lambda _: None)
    assert kept.decision_shift == 0.0


def test_validation_uses_gold_only_when_there_is_enough():
    df = _frame()
    data = batches.from_frame(df, training_spec())
    cfg = TrainConfig.from_spec(training_spec(), min_gold_validation=200)
    mask, kind = validation_mask(data, cfg)
    assert kind.startswith("seeded 10%") and 0.07 < mask.mean() < 0.13
    mask, kind = validation_mask(data, TrainConfig.from_spec(training_spec(), min_gold_validation=50,
                                                              min_gold_positives=5))
    assert kind.startswith("gold") and set(df.loc[mask, "_source"]) == {"gold"}
    assert mask.sum() == pytest.approx(0.5 * (df["_source"] == "gold").sum(), rel=0.2)
    capped = TrainConfig.from_spec(training_spec(), min_gold_validation=50, min_gold_positives=5,
                                   max_validation=60)
    assert 40 <= validation_mask(data, capped)[0].sum() <= 80  # a large gold set keeps most rows for training


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
    assert metrics.f1_positive(test["_label"].to_numpy(), probs.argmax(1), 1) > 0.8
    untrained = train(df, spec, TrainConfig.from_spec(training_spec(epochs=0)), log=lambda _: None)
    assert untrained.history == [] and untrained.best_epoch == 0


def test_an_epoch_trains_on_a_fresh_sample_of_epoch_rows_rows(monkeypatch):
    """training.epoch_rows caps the rows between two validations; each epoch draws anew, so the
    epochs together still see most rows. At the default (1,000,000) a smaller set is passed
    whole each epoch. Every other knob at its default (patience 2 runs at least 3 epochs; an
    epoch is at least min_steps 100 steps, 12,800 rows of 128); gold rows only, so no weak-row
    choice trains a second model."""
    from mlinfra_assets.training import trainer

    seen: list[np.ndarray] = []
    inner = trainer.mixed_batch

    def spy(model, batch, *args):  # noqa: ANN001, ANN202
        seen.append(batch[0].numpy().copy())  # the batch's numeric rows identify them
        return inner(model, batch, *args)

    monkeypatch.setattr(trainer, "mixed_batch", spy)
    df = _frame(n=40_000).assign(_source="gold", _weight=1.0)
    spec = training_spec(batch_size=128, epochs=3, epoch_rows=12_800)
    capped = train(df, spec, TrainConfig.from_spec(spec), log=lambda _: None)
    assert capped.train_rows > 30_000 and capped.epoch_samples == 12_800 and len(seen) == 3 * 100
    epochs = [{row.tobytes() for batch in seen[i * 100:(i + 1) * 100] for row in batch} for i in range(3)]
    assert all(len(e) == 12_800 for e in epochs)  # no row twice within an epoch
    # two independent draws of 12,800 of ~35,000 rows share ~4,700; one fixed sample would share all
    assert len(epochs[0] & epochs[1]) < 6_000 and len(epochs[1] & epochs[2]) < 6_000
    seen.clear()
    spec = training_spec(batch_size=128, epochs=3)
    assert spec.training.epoch_rows == 1_000_000
    whole = train(df, spec, TrainConfig.from_spec(spec), log=lambda _: None)
    assert whole.epoch_samples >= whole.train_rows
    assert len({row.tobytes() for batch in seen[:len(seen) // 3] for row in batch}) == whole.train_rows


def test_mixup_blends_rows_with_partners_and_their_targets_and_weights_alike():
    from mlinfra_assets.training.model import Preprocessor, TabularMLP

    torch.manual_seed(0)
    pre = Preprocessor(["a", "b"], ["c"], [0.0, 0.0], [1.0, 1.0], {"c": ["x", "y"]})
    model = TabularMLP(pre, 2, [8]).eval()
    n = 256
    numeric, codes = torch.randn(n, 2), torch.randint(0, 3, (n, 1))
    targets = torch.nn.functional.one_hot(torch.arange(n) % 2, 2).float()
    weights = torch.rand(n) + 0.5
    batch = [numeric, codes, targets, weights]

    def mix(alpha: float, seed: int):  # noqa: ANN202
        return mixed_batch(model, batch, alpha, np.random.default_rng(seed), torch.Generator().manual_seed(seed))

    logits, t, w = mix(0.0, 1)  # off: the plain forward pass
    assert torch.equal(logits, model(numeric, codes)) and torch.equal(t, targets) and torch.equal(w, weights)
    with torch.no_grad():
        logits, t, w = mix(0.4, 1)
    assert torch.allclose(t.sum(dim=1), torch.ones(n))
    lam = t.max(dim=1).values
    blended = lam < 1.0  # a row drawn with a partner of the other class
    assert 0.3 * n < blended.sum() < 0.7 * n
    assert torch.allclose(lam[blended], lam[blended][0]) and 0.5 <= lam[blended][0] < 1.0  # one lam a batch
    assert w.min() >= weights.min() and w.max() <= weights.max() and not torch.equal(w, weights)
    # each row's input is lam x its own + (1 - lam) x another row's: the logits are those of that blend
    h = model.features(numeric, codes)
    own = int(torch.nonzero(blended)[0])
    partners = [j for j in range(n) if torch.allclose(
        model.mlp(lam[own] * h[own] + (1 - lam[own]) * h[j]), logits[own], atol=1e-5)]
    assert len(partners) == 1 and t[own].argmax() == targets[own].argmax() != targets[partners[0]].argmax()
    with torch.no_grad():
        again, other = mix(0.4, 1), mix(0.4, 2)
    assert torch.equal(again[0], logits) and not torch.equal(other[0], logits)  # seeded


def test_metrics_and_slices():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]])
    s = metrics.summary(labels, probs, positive=1)
    assert s["f1"] == pytest.approx(2 / 3) and s["accuracy"] == 0.75
    assert s["pr_auc"] == pytest.approx(5 / 6)  # ranks P, N, P, N
    assert metrics.expected_calibration_error(labels, np.eye(2)[labels]) == 0.0
    assert np.isnan(metrics.pr_auc(np.zeros(3, int), np.ones(3), 1))
    assert np.isnan(metrics.f1_positive(np.zeros(3, int), np.zeros(3, int), 1))  # undefined, not 0
    frame = pd.DataFrame({"_label": labels, "channel": ["pos", "pos", "online", "online"]})
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


def test_streamed_batches_match_the_frame_across_batch_boundaries():
    import duckdb

    spec, df = training_spec(), _frame(n=500)
    df.loc[3, "amount"] = np.nan
    df.loc[5, "channel"] = None
    con = duckdb.connect()
    con.register("_df", df)
    streamed = batches.stream_arrays(con, spec, "SELECT * FROM _df", batch_rows=37)  # 14 batches
    whole = batches.from_frame(df, spec)
    assert streamed.vocab == whole.vocab == {"channel": ["atm", "online", "pos"],
                                             "merchant_category": ["grocery", "travel"]}
    assert np.array_equal(streamed.codes, whole.codes)
    assert np.array_equal(np.isnan(streamed.numeric), np.isnan(whole.numeric))
    assert streamed.codes[5, 0] == 0 and streamed.missing["amount"] == 1
    assert list(streamed.codes[:3, 0]) == [whole.vocab["channel"].index(c) + 1 for c in df["channel"][:3]]
    assert np.allclose(streamed.targets.sum(axis=1), 1.0) and streamed.gold.sum() == (df["_source"] == "gold").sum()


def test_decision_shift_maximizes_f1_and_folds_into_the_network():
    margins = np.array([3.0, 2.0, 1.0, 0.5, -0.5, -1.0, -2.0, -3.0])
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])  # positives are the top four: boundary 0.0 ...
    logits = np.column_stack([np.zeros(8), margins - 1.0])  # ... but the net's is at margin 1.0
    shift = decision.best_shift(logits, labels, positive=1)
    assert shift == pytest.approx(1.0)
    assert ((logits[:, 1] + shift > logits[:, 0]) == (labels == 1)).all()
    assert decision.best_shift(logits, np.zeros(8, int), positive=1) == 0.0
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    before = net(torch.ones(1, 2)).detach()
    decision.fold_shift(net, 1, 0.75)
    assert (net(torch.ones(1, 2)).detach() - before)[0].tolist() == pytest.approx([0.0, 0.75])


def test_bad_training_input_raises_naming_the_problem():
    spec, df = training_spec(), _frame(n=400)
    cfg = TrainConfig.from_spec(spec)
    with pytest.raises(ValueError, match="training set is empty"):
        train(df.iloc[:0], spec, cfg, log=lambda _: None)
    legit_only = df.assign(_prob_legit=1.0, _prob_fraud=0.0, _label=0)
    with pytest.raises(ValueError, match=r"no weight on class index \[1\] \(\['fraud'\]\)"):
        train(legit_only, spec, cfg, log=lambda _: None)
    infinite = df.copy()
    infinite.loc[7, "distance_km"] = np.inf
    with pytest.raises(ValueError, match="column 'distance_km' has 1 infinite"):
        train(infinite, spec, cfg, log=lambda _: None)
    bad_target = df.copy()
    bad_target.loc[2, "_prob_fraud"] = np.nan
    with pytest.raises(ValueError, match="_prob_<class> has missing"):
        train(bad_target, spec, cfg, log=lambda _: None)


def test_missing_numerics_are_imputed_in_training_and_scoring():
    spec, df = training_spec(epochs=2), _frame(n=600)
    df.loc[df.index[::10], "amount"] = np.nan
    result = train(df, spec, TrainConfig.from_spec(spec), log=lambda _: None)
    assert result.missing["amount"] == 60 and result.missing["hour"] == 0
    rows = _frame(n=5, seed=3)
    rows.loc[0, "amount"], rows.loc[1, "amount"] = np.nan, np.inf
    probs = result.model.predict_proba(rows)
    assert np.isfinite(probs).all()
    filled = rows.copy()
    filled.loc[[0, 1], "amount"] = result.model.pre.means[spec.numeric.index("amount")]
    assert np.allclose(probs, result.model.predict_proba(filled))


def test_a_saved_model_is_tensors_and_json_and_loads_without_unpickling_code(tmp_path, monkeypatch):
    from mlinfra_assets.training.model import ARCHITECTURE, TRUST_PICKLES, ScoringModel

    spec = training_spec(epochs=1, hidden=[16, 8])
    model = train(_frame(n=600), spec, TrainConfig.from_spec(spec), log=lambda _: None).model
    model.save(tmp_path / "v1")
    weights = torch.load(tmp_path / "v1" / "model.pt", weights_only=True)
    assert isinstance(weights, dict) and all(isinstance(t, torch.Tensor) for t in weights.values())
    loaded = ScoringModel.load(tmp_path / "v1", version="1")
    rows = _frame(n=50, seed=2)
    assert loaded.version == "1" and not loaded.model.training
    assert np.array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    # a folder from an earlier mlinfra: the whole module pickled, no architecture file
    old = tmp_path / "old"
    model.save(old)
    (old / ARCHITECTURE).unlink()
    torch.save(model.model, old / "model.pt")
    monkeypatch.delenv(TRUST_PICKLES, raising=False)
    with pytest.raises(FileNotFoundError, match=f"{old}.*pickled module.*Re-materialize training/model.*{TRUST_PICKLES}=1"):
        ScoringModel.load(old)
    monkeypatch.setenv(TRUST_PICKLES, "1")
    assert np.array_equal(ScoringModel.load(old).predict_proba(rows), model.predict_proba(rows))
    with pytest.raises(TypeError, match="writes TabularMLP models, not Sequential"):
        ScoringModel(torch.nn.Sequential(), model.pre, model.classes).save(tmp_path / "odd")


def _with_weak_labels(df: pd.DataFrame, noise: bool) -> pd.DataFrame:
    """`df` whose weak rows' labels are the truth, or (`noise`) the truth shuffled among the weak
    rows: labeling functions that get the class shares right and say nothing of the row."""
    weak = (df["_source"] == "weak").to_numpy()
    y = df["_label"].to_numpy().copy()
    if noise:
        y[weak] = np.random.default_rng(3).permutation(y[weak])
    p = np.where(y == 1, 0.9, 0.05)
    return df.assign(_prob_legit=1 - p, _prob_fraud=p, _label=y)


@pytest.mark.parametrize("noise", [False, True])
def test_weak_rows_train_only_where_they_beat_gold_rows_alone(noise):
    df, spec = _frame(2000), training_spec(batch_size=128, epochs=4)
    gold_rows = int((df["_source"] == "gold").sum())
    result = train(_with_weak_labels(df, noise), spec, TrainConfig.from_spec(spec), log=lambda _: None)
    choice = result.weak
    assert choice is not None and choice.compared_on
    assert choice.used is (not noise)
    if noise:  # labels that say nothing lose on gold, and the model trains on gold rows only
        assert choice.gold_only > choice.with_weak and result.train_rows + result.val_rows <= gold_rows
        assert "left out" in choice.reason
    else:
        assert choice.with_weak >= choice.gold_only and result.train_rows + result.val_rows == len(df)
    truth = _frame(seed=1)

    def f1(r) -> float:  # noqa: ANN001 - a TrainResult
        return metrics.f1_positive(truth["_label"].to_numpy(), r.model.predict_proba(truth).argmax(1), 1)

    if noise:  # on fresh rows the chosen model is far better than one forced to learn the noise
        forced = train(_with_weak_labels(df, noise), spec, TrainConfig.from_spec(spec, choose_weak=False),
                       log=lambda _: None)
        assert f1(result) > f1(forced) + 0.05
    else:
        assert f1(result) > 0.8


def test_gold_folds_split_each_class_evenly_and_skip_other_rows():
    from mlinfra_assets.training.trainer import gold_folds

    df = _frame(1000)
    data = batches.from_frame(df, training_spec())
    fold = gold_folds(data, 3, seed=7)
    assert set(fold[~data.gold]) == {-1} and set(fold[data.gold]) == {0, 1, 2}
    for c in (0, 1):
        sizes = np.bincount(fold[data.gold & (data.labels == c)], minlength=3)
        assert sizes.max() - sizes.min() <= 1
    assert np.array_equal(fold, gold_folds(data, 3, seed=7))


def test_weak_rows_are_kept_without_comparing_when_gold_rows_are_too_few_or_the_choice_is_off():
    df, spec = _frame(1500), training_spec(batch_size=128, epochs=2)
    df = _with_weak_labels(df, noise=True)
    few = df[(df["_source"] == "weak") | (df.index < 200)]  # about 20 gold rows
    result = train(few, spec, TrainConfig.from_spec(spec), log=lambda _: None)
    assert result.weak.used and not result.weak.compared_on and "min_choice_gold" in result.weak.reason
    off = train(df, spec, TrainConfig.from_spec(spec, choose_weak=False), log=lambda _: None)
    assert off.weak.used and "choose_weak is off" in off.weak.reason
    only_gold = train(df[df["_source"] == "gold"], spec, TrainConfig.from_spec(spec), log=lambda _: None)
    assert only_gold.weak is None


def _at_the_boundary(df: pd.DataFrame, share: float = 0.1) -> pd.DataFrame:
    """`df` whose gold rows are the `share` of rows nearest the decision boundary, as the
    active-learning queue picks them, instead of a random draw."""
    score = (df["amount"] + (df["channel"] == "online") * 1.5 - 2.0).abs()
    near = (score.rank(method="first") <= share * len(df)).to_numpy()
    return df.assign(_source=np.where(near, "gold", "weak"), _weight=np.where(near, 1.0, 0.5))


def test_gold_rows_drawn_at_random_look_like_a_sample_and_the_queue_s_rows_do_not():
    from mlinfra_assets.training.trainer import gold_sample_gap

    spec = training_spec()
    for seed in (0, 1, 2):
        data = batches.from_frame(_frame(3000, seed=seed), spec)
        gap = gold_sample_gap(data, data.source == batches.SOURCES.index("weak"), spec.numeric, seed)
        assert gap.looks_sampled and 0 < gap.z <= gap.critical, gap
    data = batches.from_frame(_at_the_boundary(_frame(3000)), spec)
    gap = gold_sample_gap(data, data.source == batches.SOURCES.index("weak"), spec.numeric, 0)
    assert not gap.looks_sampled and gap.column == "amount" and gap.z > 3 * gap.critical, gap
    assert "amount" in gap.describe()


def test_weak_rows_stay_when_the_queue_s_gold_rows_alone_move_the_class_shares():
    """Gold rows as the active-learning queue picks them are no sample of the data: where the
    model without the weak rows predicts class shares on them further than
    `max_share_shift` from the weak labels' own, the weak rows stay, whatever the gold rows say."""
    from mlinfra_assets.training.trainer import share_shift

    df = _with_weak_labels(_at_the_boundary(_frame(2000)), noise=True)
    spec = training_spec(batch_size=128, epochs=4)
    free = train(df, spec, TrainConfig.from_spec(spec), log=lambda _: None)
    assert not free.weak.used, free.weak.reason  # the noise loses on gold, and the shares barely move
    weak = batches.from_frame(df[df["_source"] == "weak"], spec)
    moved = share_shift(free, weak, seed=0)
    assert 0.0 < moved <= 0.25 and "within" in free.weak.reason, (moved, free.weak.reason)
    strict = train(df, spec, TrainConfig.from_spec(spec, max_share_shift=moved / 2), log=lambda _: None)
    assert strict.weak.used and "no sample of the data" in strict.weak.reason, strict.weak.reason
    assert "amount" in strict.weak.reason
    assert strict.train_rows + strict.val_rows == len(df)  # the model with the weak rows


def test_a_random_gold_budget_outweighs_weak_labels_whose_class_shares_are_wrong():
    """Labeling functions that flag far too many rows: the model without their rows moves the
    class shares on them well past `max_share_shift`, but the gold rows are a random draw, so
    their shares stand for the data's and the weak rows are left out."""
    from mlinfra_assets.training.trainer import share_shift

    df, spec = _frame(2000), training_spec(batch_size=128, epochs=4)
    weak = (df["_source"] == "weak").to_numpy()
    y = df["_label"].to_numpy().copy()
    y[weak & (np.random.default_rng(5).random(len(df)) < 0.5)] = 1  # half the weak rows called positive
    p = np.where(y == 1, 0.9, 0.05)
    df = df.assign(_prob_legit=1 - p, _prob_fraud=p, _label=y)
    result = train(df, spec, TrainConfig.from_spec(spec), log=lambda _: None)
    assert not result.weak.used and "look like a sample" in result.weak.reason, result.weak.reason
    assert share_shift(result, batches.from_frame(df[weak], spec), seed=0) > TrainConfig.max_share_shift
    assert result.weak.gold_only > result.weak.with_weak
