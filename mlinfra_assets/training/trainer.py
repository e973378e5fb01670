"""The training loop: noise-aware soft-target loss, class balancing, early stopping on gold.

Dagster-free. Input is the training set as `TrainingArrays` (streamed from DuckDB) or a
DataFrame (features, `_prob_<class>` soft targets, `_weight`, `_source`); output is a
`ScoringModel` and its curves. The epoch is chosen on the validation rows by the spec's
metric (`spec.metric`; for the positive-class F1 of two classes by its threshold-free PR-AUC,
since the decision rule is tuned after the epoch is chosen, see `decision`).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training import calibration, decision
from mlinfra_assets.training.batches import SOURCES, Recent, TrainingArrays, from_frame
from mlinfra_assets.training.calibration import Calibration
from mlinfra_assets.training.metrics import f1_positive, metric_score, pr_auc
from mlinfra_assets.training.model import Preprocessor, ScoringModel, TabularMLP


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of one training (spec.training plus the loop's own defaults)."""

    hidden: list[int]
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    positive_index: int
    metric: str = "f1"  # spec.metric: f1 (positive class), macro_f1 or accuracy
    n_classes: int = 2
    patience: int = 2
    balance_power: float = 0.5  # 1.0 = full inverse-frequency class weights, 0.0 = none
    synthetic_max_share: float = 0.2  # most of a class's mass synthetic rows may carry (1.0: no cap)
    mixup: float = 0.0  # alpha of mixup's Beta(alpha, alpha) blend of row pairs; 0: off
    min_steps: int = 100  # optimizer steps per epoch at least: a small set is passed several times
    epoch_rows: int = 0  # an epoch draws at most this many rows (a fresh sample each epoch); 0: all of them
    validation_share: float = 0.5  # share of the gold rows that validate (the rest trains) ...
    max_validation: int = 5000  # ... at most this many
    min_gold_validation: int = 100
    min_gold_positives: int = 10
    min_gold_per_class: int = 5  # macro-F1 / accuracy: gold validation rows of each gold class, at least
    # weak rows are kept only where they help: with them and without them compared on gold rows
    # (see `choose_weak`); off: always kept
    choose_weak: bool = True
    choice_folds: int = 3  # too few gold rows to validate on: folds of the gold rows instead
    min_choice_gold: int = 30  # fewer gold rows: weak rows kept without comparing
    choice_max_rows: int = 200_000  # the folds only on sets this small (each fold trains twice)
    # weak rows are left out only if the model without them predicts class shares on the weak
    # rows within this total-variation distance of the weak labels' shares (see `choose_weak`)
    max_share_shift: float = 0.25
    # the validation figure that picks the epoch: "auto" (the metric; PR-AUC for the positive
    # class's F1, whose decision is tuned afterwards), "metric", "pr_auc" or "loss"
    select_on: str = "auto"
    tune_decision: bool = True  # two classes, metric f1: move the positive class's decision (see `decision`)
    decision_resamples: int = 200  # bootstrap resamples of the validation rows for that decision
    # with weak rows, the decision flags between prevalence / f and prevalence * f of them
    # (prevalence: the label model's positive share); 1.0 flags exactly that share
    prevalence_factor: float = 1.5
    # torch intra-op threads. One is fastest for this small MLP: at batch 1024 a second
    # thread buys nothing, and on a busy 2-core machine OpenMP spinning made it 8x slower.
    threads: int = 1

    @classmethod
    def from_spec(cls, spec: DatasetSpec, **overrides: object) -> TrainConfig:
        t = spec.training
        knobs: dict[str, object] = dict(
            hidden=list(t.hidden), epochs=t.epochs, batch_size=t.batch_size,
            learning_rate=t.learning_rate, seed=t.seed, positive_index=spec.positive_index,
            metric=spec.metric, n_classes=spec.n_classes, epoch_rows=t.epoch_rows,
            synthetic_max_share=t.synthetic_max_share, mixup=t.mixup,
        )
        return cls(**{**knobs, **overrides})  # type: ignore[arg-type] - an override replaces the spec's value

    @property
    def selection(self) -> str:
        """The validation figure that chooses the epoch: `loss`, `pr_auc` or the metric's name."""
        if self.select_on == "auto":
            return "pr_auc" if self.metric == "f1" and decision.applies(self.n_classes, self.metric) else self.metric
        return self.metric if self.select_on == "metric" else self.select_on


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    val_f1: float
    val_pr_auc: float
    seconds: float
    val_metric: float = float("nan")  # the spec's metric (argmax) on the validation rows
    val_select: float = float("nan")  # the figure that chooses the epoch (TrainConfig.selection)


@dataclass
class TrainResult:
    model: ScoringModel
    history: list[EpochStats]
    best_epoch: int  # 0 when no epoch ran
    best_val_f1: float  # positive-class F1 of the final decision rule on the validation rows
    metric: str  # the spec's metric
    best_val_metric: float  # the spec's metric of the final model on the validation rows
    selected_on: str  # the validation figure that chose the epoch
    validation: str  # which rows validated
    class_weights: list[float]
    train_rows: int
    val_rows: int
    epoch_samples: int  # rows an epoch trains on (all the training rows, or training.epoch_rows of them)
    seconds: float
    samples_per_s: float
    decision_shift: float  # added to the positive class's logit (0 when not tuned; always 0 for 3+ classes)
    missing: dict[str, int]  # NaN numerics imputed with the training mean, per column
    synthetic_scale: list[float]  # per class: factor on the synthetic rows' weight (1.0: cap not binding)
    val_labels: np.ndarray = field(repr=False)
    val_probs: np.ndarray = field(repr=False)
    weak: WeakChoice | None = None  # whether the weak rows trained, and why
    decision: str = "argmax"  # how the decision shift was chosen, in words
    recent: RecentCap | None = None  # the decision on the latest scored partitions' rows


@dataclass(frozen=True)
class RecentCap:
    """The final decision on a sample of the latest scored partitions' rows: the share it flags
    against the positive share the champion's calibrated probabilities expect there, and
    whether the cap (`decision.cap_to_recent`) lowered the shift (by `lowered_by`)."""

    where: str
    rows: int
    expected_share: float
    flagged_share: float
    lowered_by: float = 0.0


@dataclass(frozen=True)
class WeakChoice:
    """Whether the weak rows trained the model: the spec's metric on gold rows of the model
    trained with them and without them, and the reason in a sentence."""

    used: bool
    reason: str
    with_weak: float = float("nan")  # mean over the compared validations; NaN: not compared
    gold_only: float = float("nan")
    compared_on: str = ""  # which gold rows compared the two ("" when not compared)


def validation_mask(data: TrainingArrays, cfg: TrainConfig) -> tuple[np.ndarray, str]:
    """Validation rows: a seeded share of the gold rows when there are enough of them (for the
    positive-class F1: enough positives; otherwise enough rows of each class the gold rows
    hold), the others still train; else a seeded 10% of the whole training set."""
    draw = np.random.default_rng(cfg.seed).random(len(data))
    gold = data.gold
    share = min(cfg.validation_share, cfg.max_validation / max(int(gold.sum()), 1))
    chosen = gold & (draw < share)
    if cfg.metric == "f1":
        positives = int(np.sum(chosen & (data.labels == cfg.positive_index)))
        enough, what = positives >= cfg.min_gold_positives, f"{positives} positive"
    else:
        counts = np.bincount(data.labels[chosen], minlength=cfg.n_classes)
        present = np.bincount(data.labels[gold], minlength=cfg.n_classes) > 0
        enough = bool(present.any()) and bool((counts[present] >= cfg.min_gold_per_class).all())
        what = f"at least {int(counts[present].min()) if present.any() else 0} of each gold class"
    if chosen.sum() >= cfg.min_gold_validation and enough:
        return chosen, f"gold: {int(chosen.sum())} rows, {what}"
    return draw < 0.1, f"seeded 10% of the training set ({int(np.sum(draw < 0.1))}), too few gold rows"


def synthetic_scale(data: TrainingArrays, max_share: float) -> np.ndarray:
    """Per class, the factor on the synthetic rows' weights that keeps their share of the
    class's mass (weight x soft target) at most `max_share`; 1.0 where it already is.

    Synthetic rows augment the real ones: at the spec's weights a generous `target_share`
    makes them most of a rare class's mass (on the demo 80% of fraud), and the model then
    learns the synthesizer's notion of fraud. With the cap they add a bounded share.
    """
    k = data.targets.shape[1]
    syn = data.source == SOURCES.index("synthetic")
    if max_share >= 1.0 or not syn.any():
        return np.ones(k, dtype="float32")
    real = (data.targets[~syn] * data.weights[~syn, None]).sum(axis=0)
    fake = (data.targets[syn] * data.weights[syn, None]).sum(axis=0)
    allowed = real * max_share / (1.0 - max_share)
    return np.where(fake > allowed, allowed / np.maximum(fake, 1e-12), 1.0).astype("float32")


def cap_synthetic(data: TrainingArrays, scale: np.ndarray) -> TrainingArrays:
    """`data` with each synthetic row's weight times its class's `scale` (soft-target mix)."""
    if np.all(scale == 1.0):
        return data
    syn = data.source == SOURCES.index("synthetic")
    weights = data.weights.copy()
    weights[syn] *= data.targets[syn] @ scale  # float32 times float32
    return dataclasses.replace(data, weights=weights)


def class_weights(targets: np.ndarray, weights: np.ndarray, power: float,
                  classes: list[str] | None = None) -> np.ndarray:
    """Inverse-frequency class weights from the weighted soft label distribution, ** power."""
    mass = (targets * weights[:, None]).sum(axis=0)
    if np.any(mass <= 0):
        empty = [int(i) for i in np.flatnonzero(mass <= 0)]
        names = f" ({[classes[i] for i in empty]})" if classes else ""
        raise ValueError(f"the training set has no weight on class index {empty}{names}: a model needs "
                         "real rows of every class (synthetic rows are capped at training.synthetic_max_share "
                         "of a class's mass); add labelled rows of it or raise its source weight")
    share = mass / mass.sum()
    cw = (1.0 / (len(mass) * share)) ** power
    return (cw / np.dot(cw, share)).astype("float32")  # weighted mean 1: loss scale unchanged


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, cw: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over rows of weight * sum_c cw_c * p_c * -log q_c, and the normalizer (its weights)."""
    per_class = -targets * torch.log_softmax(logits, dim=1) * cw
    norm = (weights * (targets * cw).sum(dim=1)).sum()
    return (weights * per_class.sum(dim=1)).sum(), norm


def mixed_batch(model: TabularMLP, batch: list[torch.Tensor], alpha: float, rng: np.random.Generator,
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, soft targets and weights of one training batch (numeric, codes, targets, weights),
    with mixup (Zhang et al., 2018) when `alpha` > 0 (which needs a TabularMLP's `features`;
    with 0 any module that takes (numeric, codes) will do).

    Each row is blended with a random partner from the batch in the network's input space
    (standardized numerics and embeddings: codes cannot be blended), and its soft target and
    weight alike: lam ~ Beta(alpha, alpha), taken as max(lam, 1 - lam) so the row stays the
    larger part. On the demo data it is what keeps a wide net ([256, 256]) from fitting the
    labeling functions' noise and the synthesizer's artifacts (docs/training.md, docs/edge.md).
    """
    numeric, codes, targets, weights = batch
    if alpha <= 0:
        return model(numeric, codes), targets, weights
    h = model.features(numeric, codes)
    lam = float(rng.beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)
    partner = torch.randperm(len(h), generator=gen)
    h, targets, weights = (lam * x + (1.0 - lam) * x[partner] for x in (h, targets, weights))
    return model.mlp(h), targets, weights


def _logits(model: TabularMLP, rows: list[torch.Tensor]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(rows[0], rows[1])


def _evaluate(model: TabularMLP, va: list[torch.Tensor], cw: torch.Tensor, cfg: TrainConfig
              ) -> tuple[float, float, float, float]:
    """Weighted soft-target loss, F1 (argmax) and PR-AUC of the positive class, and the spec's
    metric (argmax) on the validation rows."""
    logits = _logits(model, va)
    loss, norm = soft_cross_entropy(logits, va[2], va[3], cw)
    probs = torch.softmax(logits, dim=1).numpy()
    labels, pred, positive = va[4].numpy(), probs.argmax(1), cfg.positive_index
    f1, auc = f1_positive(labels, pred, positive), pr_auc(labels, probs[:, positive], positive)
    score = metric_score(cfg.metric, labels, pred, cfg.n_classes, positive)
    # no positive in the validation rows: F1 and PR-AUC are undefined; such epochs rank by loss
    return float(loss / norm.clamp_min(1e-12)), f1, auc, score


def _decision_shift(model: TabularMLP, pre: Preprocessor, fit: TrainingArrays, va: list[torch.Tensor],
                    cfg: TrainConfig, gold: bool) -> tuple[float, str] | None:
    """The shift of the positive logit and how it was chosen (see `decision`); None when
    there is neither a weak positive share nor gold validation rows to choose it from."""
    pos = cfg.positive_index
    weak = fit.rows(fit.source == SOURCES.index("weak"))
    prevalence = float(weak.targets[:, pos].mean()) if len(weak) else 0.0
    bounded = 0 < prevalence < 1  # weak rows give the label model's positive share
    factor = cfg.prevalence_factor if gold else 1.0
    best = None
    if gold and (factor > 1.0 or not bounded):  # a factor of 1 leaves the gold F1 nothing to choose
        best = decision.best_shift(_logits(model, va).numpy(), va[4].numpy(), pos, cfg.decision_resamples, cfg.seed)
    if not bounded:
        return None if best is None else (best, "best F1 on the gold validation rows")
    sample = weak.rows(np.random.default_rng(cfg.seed).random(len(weak)) < 50_000 / len(weak))
    population = decision.margins(_logits(model, _tensors(sample, pre)).numpy(), pos)
    if best is None:
        return decision.clip_to_prevalence(0.0, population, prevalence, 1.0), \
            f"flags the label model's positive share of the weak rows, {prevalence:.2%}"
    return decision.clip_to_prevalence(best, population, prevalence, factor), \
        f"best F1 on the gold validation rows, flagging {prevalence / factor:.2%} to " \
        f"{prevalence * factor:.2%} of the weak rows"


def train(data: TrainingArrays | pd.DataFrame, spec: DatasetSpec, cfg: TrainConfig, log=print,  # noqa: ANN001
          recent: Recent | None = None) -> TrainResult:
    """Fit a `TabularMLP`; keep the epoch with the best validation figure (`cfg.selection`:
    the spec's metric, PR-AUC for the positive-class F1; ties by loss). Weak rows train it
    only where they beat gold rows alone on gold validation rows (`choose_weak`).

    Parameters
    ----------
    data : the training set (`TrainingArrays`, or a DataFrame of training-set rows).
    spec : the dataset spec (feature lists, classes).
    cfg : the training knobs; `cfg.epochs = 0` returns the untrained network.
    log : called with one line per epoch.
    recent : rows of the latest scored partitions and the positive share expected there: the
        tuned decision flags at most `cfg.prevalence_factor` times that share of them.
    """
    if isinstance(data, pd.DataFrame):
        data = from_frame(data, spec)
    if len(data) == 0:
        raise ValueError("the training set is empty: materialize training/training_set first")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        result = choose_weak(data, spec, cfg, log)
        if recent is not None and len(recent.rows) and cfg.tune_decision and decision.applies(cfg.n_classes, cfg.metric):
            _cap_to_recent(result, recent, cfg, log)
    finally:
        torch.set_num_threads(threads)
    result.model.calibration = calibrate(result, cfg)
    log(f"calibration: {result.model.calibration.reason}")
    return result


def _cap_to_recent(result: TrainResult, recent: Recent, cfg: TrainConfig, log) -> None:  # noqa: ANN001
    """Lower the tuned decision where it flags more than `cfg.prevalence_factor` x the expected
    positive share of the recent rows (`decision.cap_to_recent`); the validation figures follow."""
    pos, model = cfg.positive_index, result.model
    num, cat = model.pre.encode(recent.rows)
    m = decision.margins(_logits(model.model, [torch.from_numpy(num), torch.from_numpy(cat)]).numpy(), pos)
    delta = decision.cap_to_recent(0.0, m, recent.positive_share, cfg.prevalence_factor)
    flagged = float(np.mean(m + delta > 0))
    result.recent = RecentCap(recent.where, len(m), recent.positive_share, flagged, 0.0 if delta >= 0.0 else -delta)
    if delta >= 0.0:  # the cap only ever lowers the shift
        return
    decision.fold_shift(model.model, pos, delta)
    result.decision_shift += delta
    result.decision += (f"; lowered by {-delta:.3f} to flag {flagged:.2%} of the latest rows "
                        f"({cfg.prevalence_factor:g} x the {recent.positive_share:.2%} positive share "
                        f"the champion expects on {recent.where})")
    log(f"decision: {result.decision}")
    odds = result.val_probs[:, pos] * np.exp(delta)  # the validation rows' probabilities after the shift
    probs = np.empty_like(result.val_probs)  # two classes (decision.applies)
    probs[:, pos] = odds / (odds + 1.0 - result.val_probs[:, pos])
    probs[:, 1 - pos] = 1.0 - probs[:, pos]
    result.val_probs = probs
    pred = probs.argmax(1)
    result.best_val_f1 = f1_positive(result.val_labels, pred, pos)
    result.best_val_metric = metric_score(cfg.metric, result.val_labels, pred, cfg.n_classes, pos)


def calibrate(result: TrainResult, cfg: TrainConfig) -> Calibration:
    """The calibration of the final model's probabilities on its gold validation rows (see
    training.calibration); none, with the reason, when the validation rows are not gold."""
    if not result.validation.startswith("gold"):
        return Calibration(positive=cfg.positive_index, rows=result.val_rows,
                           reason=f"not calibrated: the validation rows are not gold ({result.validation})")
    return calibration.fit(result.val_labels, result.val_probs, cfg.positive_index, cfg.seed)


def _score(result: TrainResult) -> float:
    return -1.0 if np.isnan(result.best_val_metric) else result.best_val_metric


def gold_folds(data: TrainingArrays, k: int, seed: int) -> np.ndarray:
    """Fold index (0..k-1) of each gold row, stratified by class and seeded; -1 elsewhere."""
    fold = np.full(len(data), -1, dtype="int64")
    rng = np.random.default_rng(seed)
    gold = np.flatnonzero(data.gold)
    offset = 0
    for c in np.unique(data.labels[gold]):
        rows = rng.permutation(gold[data.labels[gold] == c])
        fold[rows] = (np.arange(len(rows)) + offset) % k
        offset += len(rows)  # the next class's first row goes to the next fold
    return fold


def choose_weak(data: TrainingArrays, spec: DatasetSpec, cfg: TrainConfig, log) -> TrainResult:  # noqa: ANN001
    """Train with the weak rows and without them, and keep the model that scores better
    (the spec's metric) on the same gold rows; weak rows win ties.

    Weak labels can be worse than none: labeling functions that cover the easy rows, or
    cover few classes well, teach a model less than a few hundred gold rows do. Where the
    gold rows are enough to validate on (`validation_mask`), both models validate on that
    split and the better one is the result. Where they are fewer, the gold rows are split in
    `choice_folds` folds (by class), each candidate is trained once per fold and validated
    on it, and the set with the better mean trains the final model (the usual validation).
    Fewer than `min_choice_gold` gold rows, or a set over `choice_max_rows` without a gold
    split: the weak rows are kept, and the reason says it was not compared.

    Annotated gold rows are often no sample of the data: the active-learning queue asks for
    the rows near the boundary, and a model of those alone flags half of everything. So the
    weak rows are left out only if the model without them predicts class shares on the weak
    rows within `max_share_shift` (total variation) of the weak labels' own shares.
    """
    weak = data.source == SOURCES.index("weak")
    n_gold = int(data.gold.sum())
    if not weak.any():
        return _train(data, spec, cfg, log)
    if not cfg.choose_weak or n_gold == 0:
        why = "training.choose_weak is off" if cfg.choose_weak is False else "no gold rows to compare on"
        return dataclasses.replace(_train(data, spec, cfg, log), weak=WeakChoice(True, f"weak rows kept ({why})"))
    keep, quiet = ~weak, (lambda _: None)
    val_mask, val_kind = validation_mask(data, cfg)
    if val_kind.startswith("gold"):
        with_weak = _train(data, spec, cfg, log, (val_mask, val_kind))
        gold_only = _train(data.rows(keep), spec, cfg, quiet, (val_mask[keep], val_kind))
        a, b, on = _score(with_weak), _score(gold_only), f"the gold validation rows ({int(val_mask.sum())})"
        chosen = with_weak if a >= b else gold_only
    elif n_gold < cfg.min_choice_gold or len(data) > cfg.choice_max_rows:
        why = (f"{n_gold} gold rows, fewer than training.min_choice_gold ({cfg.min_choice_gold}) to compare on"
               if n_gold < cfg.min_choice_gold else
               f"{n_gold} gold rows are too few to validate on and {len(data):,} rows too many to train "
               f"{2 * cfg.choice_folds} times (training.choice_max_rows {cfg.choice_max_rows:,})")
        return dataclasses.replace(_train(data, spec, cfg, log), weak=WeakChoice(True, f"weak rows kept, not compared: {why}"))
    else:
        fold = gold_folds(data, cfg.choice_folds, cfg.seed)
        pairs = []
        for k in range(cfg.choice_folds):
            mask, kind = fold == k, f"gold fold {k + 1} of {cfg.choice_folds}"
            pair = (_train(data, spec, cfg, quiet, (mask, kind)), _train(data.rows(keep), spec, cfg, quiet, (mask[keep], kind)))
            if not any(np.isnan(r.best_val_metric) for r in pair):  # a fold without the positive class says nothing
                pairs.append(pair)
        if not pairs:
            return dataclasses.replace(_train(data, spec, cfg, log), weak=WeakChoice(
                True, f"weak rows kept, not compared: no fold of the {n_gold} gold rows scores {cfg.metric}"))
        a = float(np.mean([p[0].best_val_metric for p in pairs]))
        b = float(np.mean([p[1].best_val_metric for p in pairs]))
        on = f"{len(pairs)} folds of the {n_gold} gold rows"
        # the final model's decision: the folds' mean (tuned on gold there), not one guessed without gold
        shift = float(np.mean([p[0 if a >= b else 1].decision_shift for p in pairs]))
        chosen = _train(data if a >= b else data.rows(keep), spec, cfg, log, fixed_shift=shift)
    used = a >= b
    reason = (f"weak rows {'kept' if used else 'left out'}: {cfg.metric} {max(a, b):.3f} "
              f"{'with' if used else 'without'} them vs {min(a, b):.3f} {'without' if used else 'with'} them "
              f"on {on}")
    if not used:
        sample = gold_sample_gap(data, weak, spec.numeric, cfg.seed)
        shift = None if sample.looks_sampled else share_shift(chosen, data.rows(weak), cfg.seed)
        if shift is None:  # the gold rows' class shares stand for the data's: nothing to guard
            reason += f"; the gold rows look like a sample of the data ({sample.describe()})"
        elif shift > cfg.max_share_shift:
            used, chosen = True, with_weak if val_kind.startswith("gold") else _train(data, spec, cfg, log)
            reason = (f"weak rows kept: {cfg.metric} {b:.3f} without them vs {a:.3f} with them on {on}, but "
                      f"without them the model's class shares on the weak rows move {shift:.2f} (total variation) "
                      f"from the weak labels' (more than training.max_share_shift {cfg.max_share_shift}): "
                      f"the gold rows are no sample of the data ({sample.describe()}; the active-learning "
                      "queue's rows, say)")
        else:
            reason += f"; class shares on the weak rows within {shift:.2f} of the weak labels'"
    log(reason)
    return dataclasses.replace(chosen, weak=WeakChoice(used, reason, a, b, on))


@dataclass(frozen=True)
class SampleGap:
    """How far the gold rows' features lie from the weak rows': the largest two-sample z of a
    numeric column's mean or a category's share, the column it belongs to, and the z that a
    random sample of the gold rows' size would pass with 99% confidence over all those tests."""

    z: float
    critical: float
    column: str

    @property
    def looks_sampled(self) -> bool:
        return self.z <= self.critical  # False where nothing could be compared (NaN)

    def describe(self) -> str:
        where = f"{self.column}, z {self.z:.1f}" if self.column else "no column to compare"
        return f"largest difference from the weak rows: {where}; a random sample stays under {self.critical:.1f}"


def gold_sample_gap(data: TrainingArrays, weak: np.ndarray, numeric: list[str], seed: int,
                    limit: int = 50_000, alpha: float = 0.01) -> SampleGap:
    """Do the gold rows look like a random sample of the data (the weak rows)? Each numeric
    column's mean (Welch's z) and each category's share (two-proportion z) on the gold rows
    against a seeded sample of at most `limit` weak rows; the critical z is Bonferroni's over
    all the tests made. Rows the active-learning queue picked sit near the decision boundary
    and fail it; a budget drawn at random passes it. `numeric` names `data.numeric`'s columns."""
    from statistics import NormalDist

    gold, other = data.rows(data.gold), seeded_sample(data.rows(weak), seed, limit)
    ng, nw = len(gold), len(other)
    zs: list[tuple[float, str]] = []
    if ng >= 2 and nw >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            for j, name in enumerate(numeric):
                g, w = gold.numeric[:, j], other.numeric[:, j]
                g, w = g[np.isfinite(g)].astype("float64"), w[np.isfinite(w)].astype("float64")
                if len(g) < 2 or len(w) < 2:
                    continue
                se = np.sqrt(g.var(ddof=1) / len(g) + w.var(ddof=1) / len(w))
                if se > 0:
                    zs.append((abs(g.mean() - w.mean()) / se, name))
            for j, col in enumerate(data.vocab):
                cg = np.bincount(gold.codes[:, j], minlength=len(data.vocab[col]) + 1)
                cw = np.bincount(other.codes[:, j], minlength=len(data.vocab[col]) + 1)
                for k in range(len(cg)):
                    p = (cg[k] + cw[k]) / (ng + nw)
                    if 0 < p < 1:
                        se = np.sqrt(p * (1 - p) * (1 / ng + 1 / nw))
                        zs.append((abs(cg[k] / ng - cw[k] / nw) / se, col))
    if not zs:  # nothing to compare on: not shown to be a sample
        return SampleGap(float("nan"), float("nan"), "")
    z, column = max(zs)
    return SampleGap(float(z), NormalDist().inv_cdf(1 - alpha / (2 * len(zs))), column)


def _tensors(data: TrainingArrays, pre: Preprocessor) -> list[torch.Tensor]:
    arrays = (pre.fill(data.numeric), data.codes, data.targets, data.weights, data.labels)
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


def seeded_sample(data: TrainingArrays, seed: int, limit: int) -> TrainingArrays:
    """About `limit` rows of `data` (all of them when it has fewer), the same for the same seed."""
    return data.rows(np.random.default_rng(seed).random(len(data)) < limit / max(len(data), 1))


def share_shift(result: TrainResult, weak: TrainingArrays, seed: int, limit: int = 50_000) -> float:
    """Total-variation distance between the class shares `result`'s model predicts on (a seeded
    sample of at most `limit` of) the weak rows and the weak labels' mean soft target there."""
    sample = seeded_sample(weak, seed, limit)
    logits = _logits(result.model.model, _tensors(sample, result.model.pre)).numpy()
    predicted = np.bincount(logits.argmax(1), minlength=weak.targets.shape[1]) / max(len(sample), 1)
    return float(0.5 * np.abs(predicted - sample.targets.mean(axis=0)).sum())


def _train(data: TrainingArrays, spec: DatasetSpec, cfg: TrainConfig, log,  # noqa: ANN001
           validation: tuple[np.ndarray, str] | None = None, fixed_shift: float | None = None) -> TrainResult:
    """One training; `validation` (mask, description) replaces `validation_mask`'s rows, and
    `fixed_shift` the decision shift it would choose (where the decision is tuned at all)."""
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    scale = synthetic_scale(data, cfg.synthetic_max_share)
    data = cap_synthetic(data, scale)
    if np.any(scale < 1.0):
        log(f"synthetic rows capped at {cfg.synthetic_max_share:.0%} of their class's mass: weight x "
            + ", ".join(f"{c} {s:.3f}" for c, s in zip(spec.classes, scale, strict=True)))
    val_mask, val_kind = validation if validation is not None else validation_mask(data, cfg)
    fit = data.rows(~val_mask)
    if len(fit) == 0:
        raise ValueError("the training set has no row left after the validation split: add rows")
    cw = torch.from_numpy(class_weights(fit.targets, fit.weights, cfg.balance_power, list(spec.classes)))
    pre = Preprocessor.from_arrays(fit.numeric, data.vocab, spec.numeric)
    tr, va = _tensors(fit, pre), _tensors(data.rows(val_mask), pre)
    model = TabularMLP(pre, spec.n_classes, cfg.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    gen = torch.Generator().manual_seed(cfg.seed)
    lam_rng = np.random.default_rng(cfg.seed)
    n, bs = len(fit), min(cfg.batch_size, len(fit))
    per_epoch = min(n, cfg.epoch_rows) if cfg.epoch_rows > 0 else n
    steps = max(-(-per_epoch // bs), cfg.min_steps)
    if per_epoch < n:
        log(f"each epoch trains on a fresh sample of {steps * bs:,} of the {n:,} training rows (training.epoch_rows)")
    history: list[EpochStats] = []
    best_state, best_key, best_epoch = copy.deepcopy(model.state_dict()), (-np.inf, -np.inf), 0
    selection = cfg.selection
    train_seconds = 0.0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total, total_norm = 0.0, 0.0
        order = torch.cat([torch.randperm(n, generator=gen) for _ in range(-(-steps * bs // n))])
        for idx in order[: steps * bs].split(bs):
            logits, targets, weights = mixed_batch(model, [t[idx] for t in tr[:4]], cfg.mixup, lam_rng, gen)
            loss, norm = soft_cross_entropy(logits, targets, weights, cw)
            opt.zero_grad()
            (loss / norm.clamp_min(1e-12)).backward()
            opt.step()
            total, total_norm = total + loss.item(), total_norm + norm.item()
        train_seconds += time.perf_counter() - t0
        val_loss, val_f1, val_auc, val_metric = _evaluate(model, va, cw, cfg)
        chosen_by = {"pr_auc": val_auc, "loss": val_loss}.get(selection, val_metric)
        history.append(EpochStats(epoch, total / max(total_norm, 1e-12), val_loss, val_f1, val_auc,
                                  time.perf_counter() - t0, val_metric, chosen_by))
        log(f"epoch {epoch}: train loss {history[-1].train_loss:.4f}, val loss {val_loss:.4f}, "
            f"val PR-AUC {val_auc:.4f}, val F1 {val_f1:.4f}, val {cfg.metric} {val_metric:.4f}")
        figure_key = -1.0 if np.isnan(chosen_by) else chosen_by
        key = (-val_loss, 0.0) if selection == "loss" else (figure_key, -val_loss)
        if key > best_key:
            best_state, best_key, best_epoch = copy.deepcopy(model.state_dict()), key, epoch
        elif epoch - best_epoch >= cfg.patience:
            log(f"early stop: no better validation {selection} for {cfg.patience} epochs (best epoch {best_epoch})")
            break
    model.load_state_dict(best_state)
    shift = 0.0
    tune = cfg.tune_decision and decision.applies(cfg.n_classes, cfg.metric)
    chosen = None
    if tune and history:
        chosen = ((fixed_shift, "the mean of the gold folds' shifts") if fixed_shift is not None
                  else _decision_shift(model, pre, fit, va, cfg, val_kind.startswith("gold")))
    how = "argmax" if not tune else "argmax (nothing to tune the decision on)"
    if chosen is not None:
        shift, how = chosen
        decision.fold_shift(model, cfg.positive_index, shift)
        how = f"positive logit shifted by {shift:+.3f} ({how})"
        log(f"decision: {how}")
    val_probs = torch.softmax(_logits(model, va), dim=1).numpy()
    val_labels = va[4].numpy()
    return TrainResult(
        model=ScoringModel(model, pre, list(spec.classes)), history=history, best_epoch=best_epoch,
        best_val_f1=f1_positive(val_labels, val_probs.argmax(1), cfg.positive_index), metric=cfg.metric,
        best_val_metric=metric_score(cfg.metric, val_labels, val_probs.argmax(1), cfg.n_classes, cfg.positive_index),
        selected_on=selection, validation=val_kind,
        class_weights=cw.tolist(), train_rows=n, val_rows=int(val_mask.sum()), epoch_samples=steps * bs,
        seconds=time.perf_counter() - start,
        samples_per_s=steps * bs * len(history) / train_seconds if train_seconds else 0.0,
        decision_shift=shift, missing=dict(data.missing), synthetic_scale=[float(s) for s in scale],
        val_labels=val_labels, val_probs=val_probs, decision=how,
    )
