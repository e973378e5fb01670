"""Weak labels from the label matrix with Snorkel's LabelModel, computed by voting pattern.

A row's probabilities depend only on its votes, and a label matrix of m LFs has few
distinct vote patterns (hundreds, not millions). So the matrix never leaves DuckDB: its
patterns are counted in SQL; the LabelModel is fit on the voted rows rebuilt from those
counts (on `fit_rows` of them, in proportion, when there are more: the model only sees
the votes' co-occurrence statistics, so a proportional sample gives the same fit up to
rounding); it is applied to each pattern once; `weak_labels` is a join in DuckDB.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.labeling.queries import load_sql
from mlinfra_assets.spec import class_column

EPOCHS = 500
MIN_PRIOR = 1e-3
# Snorkel starts the LF parameters mu at mu_init times one random number in [0, 1) drawn from
# the seed. On the demo's LFs its objective is nearly flat along that scale (the loss moves by
# ~4% between 0.01 and 1) and 500 epochs end where the start put them: over seeds 0-9 the
# positive share of the voted rows ranged from 0.5% to 3.7% (true: 1.35%), argmax F1 from 0.20
# to 0.52. So the start is not drawn: of these scales (then two finer steps around the best),
# the fit whose mean posterior over the voted rows is closest to its class balance is kept.
INIT_SCALES = tuple(float(s) for s in np.geomspace(0.005, 1.0, 9))
REFINE_STEPS = 2
# A start can also end in a permuted labelling that fits the class balance as well as the true one
# (iris, prior [0.44, 0.31, 0.25]: three of four LFs estimated at accuracy ~0, the virginica votes
# labelled setosa). Such a fit is rejected (`invalid_fit`) when most LFs are estimated below chance
# or when its argmax overrules more than this share of the rows on which 2+ LFs vote, all alike.
MAX_OVERRULED = 0.1
MATRIX = "labeling.label_matrix"
LABEL_MODEL, MAJORITY = "label_model", "majority_vote"  # the two ways to turn votes into weak labels


@dataclass(frozen=True)
class Fit:
    """A fitted label model and its predictions per vote pattern."""

    patterns: pd.DataFrame  # the LF columns, n (rows), prob_<class>..., label, confidence
    version: str
    class_balance: list[float]
    balance_source: str  # spec, lf_module, annotated_gold, majority_vote (estimated)
    fit_rows: int  # rows the model was fit on
    voted_rows: int
    rows_without_votes: int
    lf_accuracy: dict[str, float]  # the label model's estimate of each LF's accuracy
    init_scale: float | None  # the start (mu_init times this) whose fit agreed best with the class balance
    posterior_balance: list[float]  # mean posterior per class over the voted rows
    method: str = LABEL_MODEL  # LABEL_MODEL, or MAJORITY (`majority_fit`)
    rejected_starts: int = 0  # label model starts rejected as invalid fits (`invalid_fit`)
    fallback_reason: str | None = None  # why `fit` fell back to majority vote (no valid start)



def voted_patterns(patterns: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The vote patterns with at least one vote (abstain-only rows dropped), reindexed.

    Raises
    ------
    ValueError
        When no row has a vote.
    """
    voted = patterns[(patterns[names].to_numpy() != -1).any(axis=1)].reset_index(drop=True)
    if voted.empty:
        raise ValueError(
            f"no row got a vote from any labeling function ({', '.join(names)}): check the "
            "functions against the raw columns"
        )
    return voted

def prob_columns(classes: list[str]) -> list[str]:
    """`prob_<class>` per class, with the class name sanitized (as `spec.prob_columns`)."""
    return [f"prob_{class_column(c)}" for c in classes]


def quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def read_patterns(con: duckdb.DuckDBPyConnection, names: list[str], table: str = MATRIX) -> pd.DataFrame:
    """Each distinct vote pattern of `table` with its row count `n`."""
    return con.execute(load_sql("lf_patterns", columns=quoted(names), table=table)).df()


def proportional_rows(patterns: pd.DataFrame, names: list[str], limit: int) -> np.ndarray:
    """The voted rows as an L matrix, scaled down in proportion to at most `limit` rows.

    Each pattern keeps `n * limit / total` rows, rounded by largest remainder; with
    `total <= limit` this is every voted row (row order does not matter to the fit).
    """
    counts = patterns["n"].to_numpy(dtype=np.int64)
    total = int(counts.sum())
    if total > limit:
        exact = counts * (limit / total)
        keep = np.floor(exact).astype(np.int64)
        short = limit - int(keep.sum())
        keep[np.argsort(-(exact - keep), kind="stable")[:short]] += 1
        counts = keep
    return np.repeat(patterns[names].to_numpy(dtype=np.int64), counts, axis=0)


def fit(
    patterns: pd.DataFrame,
    names: list[str],
    classes: list[str],
    class_balance: list[float] | None,
    balance_source: str,
    fit_rows: int,
    seed: int,
) -> Fit:
    """Fit Snorkel's LabelModel on the voted patterns and predict each pattern. Of several
    starts (INIT_SCALES) the valid fit (`invalid_fit`) whose mean posterior matches
    `class_balance` best is kept, so the weak labels do not depend on `seed`. When no start
    gives a valid fit, the result is `majority_fit`'s, with `fallback_reason` saying why.

    Parameters
    ----------
    patterns
        `read_patterns` output: the LF columns and `n`.
    class_balance
        Prior per class; None estimates it (`estimate_balance`).
    fit_rows
        At most this many voted rows are fit on (`proportional_rows`).

    Raises
    ------
    ValueError
        When no row has a vote.
    """
    voted = voted_patterns(patterns, names)
    L = proportional_rows(voted, names, fit_rows)
    P = voted[names].to_numpy(dtype=np.int64)
    if class_balance is None:
        class_balance, balance_source = estimate_balance(P, voted["n"].to_numpy(), len(classes)), "majority_vote"
    best, rejected, why = _consistent_fit(L, P, voted["n"].to_numpy(), len(classes), class_balance, seed)
    if best is None:
        reason = (
            f"Snorkel's LabelModel gave no valid fit from any of its {rejected} starts (e.g. {why}): "
            "a permuted labelling, so majority vote writes the weak labels; check the LFs' classes "
            "and the class balance"
        )
        mv = majority_fit(patterns, names, classes, class_balance, balance_source)
        return dataclasses.replace(mv, rejected_starts=rejected, fallback_reason=reason)
    model, scale, probs, posterior = best
    out = voted[[*names, "n"]].copy()
    for k, col in enumerate(prob_columns(classes)):
        out[col] = probs[:, k]
    out["label"] = probs.argmax(axis=1).astype(np.int16)
    out["confidence"] = probs.max(axis=1)
    accuracy = {n: float(w) for n, w in zip(names, model.get_weights(), strict=True)}
    fingerprint = json.dumps(
        {"lfs": names, "balance": [round(float(p), 6) for p in class_balance], "rows": len(L),
         "acc": [round(a, 6) for a in accuracy.values()]}
    )
    return Fit(
        patterns=out,
        version="lm-" + hashlib.sha1(fingerprint.encode()).hexdigest()[:10],
        class_balance=[float(p) for p in class_balance],
        balance_source=balance_source,
        fit_rows=len(L),
        voted_rows=int(voted["n"].sum()),
        rows_without_votes=int(patterns["n"].sum() - voted["n"].sum()),
        lf_accuracy=accuracy,
        init_scale=scale,
        posterior_balance=[float(p) for p in posterior],
        rejected_starts=rejected,
    )


def majority_fit(
    patterns: pd.DataFrame, names: list[str], classes: list[str], class_balance: list[float] | None,
    balance_source: str,
) -> Fit:
    """Majority vote per voted pattern, in the shape of `fit`'s result.

    The label is Snorkel's MajorityLabelVoter's (the most voted class); a tie goes to the
    tied class with the highest prior (`class_balance`, estimated when None), so it never
    abstains. The probabilities are the vote shares (Snorkel's are one-hot, which would make
    every 2-to-1 vote look certain to the active-learning seeds and the training weights).

    Raises
    ------
    ValueError
        When no row has a vote.
    """
    voted = voted_patterns(patterns, names)
    P = voted[names].to_numpy(dtype=np.int64)
    counts = voted["n"].to_numpy()
    if class_balance is None:
        class_balance, balance_source = estimate_balance(P, counts, len(classes)), "majority_vote"
    tally = np.stack([(P == k).sum(axis=1) for k in range(len(classes))], axis=1).astype(float)
    probs = tally / tally.sum(axis=1, keepdims=True)
    tie_break = np.asarray(class_balance, dtype=float) / (10.0 * len(classes))
    top = probs.max(axis=1, keepdims=True)
    label = np.where(np.isclose(probs, top), probs + tie_break * top, probs).argmax(axis=1)
    out = voted[[*names, "n"]].copy()
    for k, col in enumerate(prob_columns(classes)):
        out[col] = probs[:, k]
    out["label"] = label.astype(np.int16)
    out["confidence"] = top[:, 0]
    fingerprint = json.dumps({"lfs": names, "balance": [round(float(p), 6) for p in class_balance], "mv": 1})
    return Fit(
        patterns=out,
        version="mv-" + hashlib.sha1(fingerprint.encode()).hexdigest()[:10],
        class_balance=[float(p) for p in class_balance],
        balance_source=balance_source,
        fit_rows=0,
        voted_rows=int(counts.sum()),
        rows_without_votes=int(patterns["n"].sum() - counts.sum()),
        lf_accuracy={},
        init_scale=None,
        posterior_balance=[float(p) for p in np.average(probs, axis=0, weights=counts)],
        method=MAJORITY,
    )


def estimate_balance(P: np.ndarray, weight: np.ndarray, k: int) -> list[float]:
    """The class balance as Snorkel's MajorityLabelVoter sees the voted rows: the mean of
    its per-row class distributions (ties split), each class at least `MIN_PRIOR`.

    A rough prior, but a stable one: fixed-point estimates through the label model itself
    collapse a class whose LFs rarely overlap with the others.
    """
    from snorkel.labeling.model import MajorityLabelVoter

    balance = np.average(MajorityLabelVoter(cardinality=k).predict_proba(P), axis=0, weights=weight)
    balance = np.maximum(balance, MIN_PRIOR)
    return [float(p) for p in balance / balance.sum()]


def invalid_fit(probs: np.ndarray, accuracy: np.ndarray, P: np.ndarray, counts: np.ndarray,
                class_balance: np.ndarray) -> str | None:
    """Why a label model fit is not a valid one, or None when it is.

    A fit is invalid when it permutes the classes, which its objective alone cannot tell
    apart: most LFs (more than half) estimated below chance, an LF's chance accuracy being
    the prior of the classes it votes for (1/k with balanced classes); or its argmax
    overruling more than `MAX_OVERRULED` of the rows on which two or more LFs vote, all for
    the same class (one vote alone may be overruled by a strong prior, so it is not counted).

    Parameters
    ----------
    probs
        The fit's class probabilities per vote pattern, shape (patterns, k).
    accuracy
        The fit's estimated accuracy per LF (`LabelModel.get_weights`), shape (m,).
    P
        The vote patterns (-1: abstain), shape (patterns, m).
    counts
        Rows per pattern.
    class_balance
        The prior per class the fit was given.
    """
    votes = np.stack([(P == c).sum(axis=0) for c in range(len(class_balance))], axis=1)  # (m, k)
    chance = (votes * class_balance).sum(axis=1) / np.maximum(votes.sum(axis=1), 1)
    below = [j for j in range(P.shape[1]) if votes[j].sum() and accuracy[j] < chance[j]]
    if 2 * len(below) > P.shape[1]:
        return f"{len(below)} of {P.shape[1]} LFs estimated below chance accuracy"
    voting = (P != -1).sum(axis=1)
    top = P.max(axis=1)
    unanimous = (voting >= 2) & np.all((P == -1) | (P == top[:, None]), axis=1)
    agreeing = int(counts[unanimous].sum())
    overruled = int(counts[unanimous & (probs.argmax(axis=1) != top)].sum())
    if agreeing and overruled > MAX_OVERRULED * agreeing:
        return f"its labels overrule {overruled} of {agreeing} rows on which 2+ LFs vote, all alike"
    return None


def _consistent_fit(L: np.ndarray, P: np.ndarray, counts: np.ndarray, cardinality: int,
                    class_balance: list[float], seed: int) -> tuple[tuple | None, int, str | None]:
    """The valid (`invalid_fit`) label model fit, of those from each of INIT_SCALES (then
    REFINE_STEPS finer steps around the best), whose mean posterior over the voted patterns
    `P` (`counts` rows each) is closest in total variation to `class_balance`: a model that
    agrees with its own prior.

    Returns
    -------
    tuple
        ((model, its start scale, its probabilities per pattern, its mean posterior) or None
        when no start gave a valid fit, the number of starts rejected, the first rejection's
        reason or None).
    """
    target = np.asarray(class_balance, dtype=float)
    rejected: list[str] = []

    def attempts(scales: list[float]) -> list[tuple[float, object, float, np.ndarray, np.ndarray]]:
        """The valid fits of `scales` (fitted together: `_label_models`), with their distance."""
        valid = []
        for scale, model in zip(scales, _label_models(L, cardinality, target, seed, scales) if scales else [],
                                strict=True):
            probs = model.predict_proba(P)
            if (why := invalid_fit(probs, model.get_weights(), P, counts, target)) is not None:
                rejected.append(why)
                continue
            posterior = np.average(probs, axis=0, weights=counts)
            valid.append((float(np.abs(posterior - target).sum() / 2), model, scale, probs, posterior))
        return valid

    valid = attempts(list(INIT_SCALES))
    if not valid:
        return None, len(rejected), rejected[0]
    best = min(valid, key=lambda t: t[0])
    step = INIT_SCALES[1] / INIT_SCALES[0]
    for _ in range(REFINE_STEPS):
        step = float(np.sqrt(step))
        near = attempts([best[2] * f for f in (1 / step, step) if best[2] * f <= 1.0])
        best = min([best, *near], key=lambda t: t[0])
    return best[1:], len(rejected), rejected[0] if rejected else None


def _label_models(L: np.ndarray, cardinality: int, class_balance: np.ndarray, seed: int,
                  init_scales: list[float]) -> list:
    """Snorkel's LabelModel fit from each of `init_scales` (`_label_model`'s start), all starts in
    one optimization: their parameters are disjoint, so the sum of their losses gives each start
    the gradient of its own, and SGD (Snorkel's default: constant rate, momentum) updates each
    element alone; 500 steps over a (starts x d x k) tensor instead of 500 per start, whose
    per-step overhead was most of the fit. Snorkel's own set-up (O, P, the mask, mu_init, the
    train config) and its post-processing (clamp, column permutation) are used as they are.
    Another optimizer or schedule than that default: one fit per start."""
    import copy

    import torch
    from snorkel.labeling.model import LabelModel

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # (m*k)^2 tensors: torch's thread pool only adds overhead
    try:
        base = LabelModel(cardinality=cardinality, verbose=False)
        base.fit(L, class_balance=class_balance, n_epochs=0, seed=seed, progress_bar=False)  # set-up only
        cfg = base.train_config
        if cfg.optimizer != "sgd" or cfg.lr_scheduler != "constant" or cfg.lr_scheduler_config.warmup_steps:
            return [_label_model(L, cardinality, class_balance, seed, s) for s in init_scales]
        mu = torch.nn.Parameter(torch.stack([base.mu_init.clone() * s for s in init_scales]).float())
        optimizer = torch.optim.SGD([mu], lr=cfg.lr, weight_decay=cfg.l2, **cfg.optimizer_config.sgd_config._asdict())
        D = cfg.l2 * torch.eye(base.d)
        diag = torch.diag(base.O)
        for _ in range(EPOCHS):
            optimizer.zero_grad()
            fitted = base.O - mu @ base.P @ mu.transpose(1, 2)
            loss = (torch.linalg.vector_norm(fitted[:, base.mask], dim=1) ** 2
                    + torch.linalg.vector_norm(torch.sum(mu @ base.P, 2) - diag, dim=1) ** 2
                    + torch.linalg.vector_norm(D @ (mu - base.mu_init), dim=(1, 2)) ** 2).sum()
            if torch.isnan(loss):
                raise Exception("Loss is NaN. Consider reducing learning rate.")  # noqa: TRY002 - Snorkel's
            loss.backward()
            optimizer.step()
        models = []
        for b in range(len(init_scales)):
            model = copy.deepcopy(base)
            model.mu = torch.nn.Parameter(mu.detach()[b].clone())
            model._clamp_params()
            model._break_col_permutation_symmetry()
            model.eval()
            models.append(model)
        return models
    finally:
        torch.set_num_threads(threads)


def _label_model(L: np.ndarray, cardinality: int, class_balance: np.ndarray, seed: int,
                 init_scale: float):  # noqa: ANN202
    import torch
    from snorkel.labeling.model import LabelModel

    class ScaledStart(LabelModel):
        """Snorkel's LabelModel started at mu_init * `init_scale` instead of a random fraction."""

        def _init_params(self) -> None:
            super()._init_params()
            self.mu = torch.nn.Parameter(self.mu_init.clone() * init_scale).float()

    model = ScaledStart(cardinality=cardinality, verbose=False)
    # its tensors are (m*k)^2: torch's thread pool only adds overhead, up to 40x on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.fit(L, class_balance=class_balance, n_epochs=EPOCHS, seed=seed, progress_bar=False)
    finally:
        torch.set_num_threads(threads)
    return model


def weak_labels_sql(names: list[str], classes: list[str], patterns_view: str, table: str = MATRIX) -> str:
    """SELECT of `labeling.weak_labels` (version bound as the one `?`): matrix x patterns."""
    probs = ", ".join(f'p."{c}"' for c in prob_columns(classes))
    return load_sql("weak_labels", probs=probs, table=table, patterns=patterns_view, columns=quoted(names))


def gold_balance(counts: pd.Series, n_classes: int) -> list[float] | None:
    """Class balance from annotated gold counts per class (add-one smoothed), or None."""
    if counts.sum() == 0:
        return None
    full = counts.reindex(range(n_classes), fill_value=0).to_numpy(dtype=float)
    return list((full + 1) / (full.sum() + n_classes))
