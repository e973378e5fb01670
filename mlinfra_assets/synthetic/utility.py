"""Do the synthetic rows help a model? Scored on the oracle holdout (Dagster-free), on the
spec's metric (`spec.metric`) over the classes that were sampled (`sampled_score`).

- TSTR vs TRTR: scikit-learn's HistGradientBoostingClassifier trained on rows sampled from the
  synthesizer (train synthetic) and, with the same settings, on the synthesizer's real fit rows
  (train real); both tested on the real holdout rows with their gold labels. A simple, fast
  model on purpose: it measures the data, not the platform's training loop.
- The final model with and without synthetic rows: the platform's trainer
  (`training/trainer.py`, `spec.training` settings) on the training set exactly as the
  training stage builds it (`training/dataset.training_set_sql`: gold + weak + synthetic rows,
  weights, soft targets; beyond `synthetic.utility_rows` weak and synthetic rows, every gold row and
  the same seeded share of the others), once with the candidate synthetic rows and once without them. Only
  for candidates the quality and privacy gates let through: for rows that are withheld anyway
  the two trainings (each as long as the training stage's, 2.4x the rest of a 20k-row run) would
  answer a question nobody asked; TSTR / TRTR are still measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.synthetic.data import LABEL

PUBLISHED = "synthetic.synthetic_rows"


METRIC_NAMES = {"f1": "F1", "macro_f1": "Macro-F1", "accuracy": "Accuracy"}


@dataclass(frozen=True)
class UtilityResult:
    """Utility figures on the spec's metric (`metric`) over the classes that were sampled; the
    field names keep `f1` for the reports that read them, whatever the metric."""

    tstr_f1: float  # train synthetic, test real
    trtr_f1: float  # train real, test real
    model_f1_without: float | None  # the platform's trainer, real rows only (None: not measured)
    model_f1_with: float | None  # the platform's trainer, real + synthetic rows
    holdout_rows: int
    train_rows: int
    metric: str = "f1"  # spec.metric
    model_note: str | None = None  # why the model figures were not measured
    model_rows: str | None = None  # which training rows the model figures were measured on

    @property
    def tstr_ratio(self) -> float:
        return self.tstr_f1 / self.trtr_f1 if self.trtr_f1 > 0 else float("nan")

    def scores(self) -> pd.DataFrame:
        name = METRIC_NAMES.get(self.metric, self.metric)
        figures = {f"TSTR {name}": self.tstr_f1, f"TRTR {name}": self.trtr_f1, "TSTR/TRTR": self.tstr_ratio}
        if self.model_f1_without is not None and self.model_f1_with is not None:
            figures |= {
                f"Model {name} Without Synthetic": self.model_f1_without,
                f"Model {name} With Synthetic": self.model_f1_with,
                f"Model {name} Gain": self.model_f1_with - self.model_f1_without,
            }
        return pd.DataFrame(
            [{"metric": "utility", "property": k, "column_name": None, "score": float(v)} for k, v in figures.items()]
        )


def sampled_score(metric: str, truth: np.ndarray, pred: np.ndarray, sampled: list[int], n_classes: int,
                  positive: int) -> float:
    """The spec's metric over the classes that were sampled: `f1` of the positive class (NaN
    when it was not sampled), `macro_f1` the mean F1 of the sampled classes, `accuracy` on the
    rows whose true class was sampled. NaN where undefined."""
    from mlinfra_assets.training.metrics import f1_positive, metric_score

    if metric == "f1":
        return f1_positive(truth, pred, positive) if positive in sampled else float("nan")
    if metric == "macro_f1":
        scores = [f1_positive(truth, pred, c) for c in sampled]
        defined = [s for s in scores if not np.isnan(s)]
        return float(np.mean(defined)) if defined else float("nan")
    rows = np.isin(truth, sampled)
    return metric_score(metric, truth[rows], pred[rows], n_classes, positive)


def holdout_frame(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> pd.DataFrame:
    """The evaluation holdout rows with their gold label (class index) in `LABEL`, as the
    training stage scores them (its `_label` column renamed to this stage's LABEL)."""
    from mlinfra_assets.training.dataset import LABEL as HOLDOUT_LABEL
    from mlinfra_assets.training.dataset import holdout_sql

    return con.execute(holdout_sql(spec)).df().rename(columns={HOLDOUT_LABEL: LABEL})


def training_frame(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, candidates: str) -> tuple[pd.DataFrame, str]:
    """The training stage's training set, its synthetic rows read from `candidates`: every gold
    row and, where the weak and synthetic rows are more than `synthetic.utility_rows`, the same
    seeded share of each (a hash of the row id, so the rows with and without synthetic are the
    same real rows); and a note saying which rows."""
    from mlinfra_assets.training.dataset import source_weights, training_set_sql

    select = training_set_sql(spec)
    if PUBLISHED not in select:
        raise RuntimeError(f"training/dataset.training_set_sql no longer reads {PUBLISHED}: update synthetic/utility.py")
    select = select.replace(PUBLISHED, candidates)
    weights = source_weights(spec)
    counts = dict(con.execute(f"SELECT _source, count(*) FROM ({select}) GROUP BY 1", weights).fetchall())
    others = sum(n for source, n in counts.items() if source != "gold")
    limit = spec.synthetic.utility_rows
    if others <= limit:
        return con.execute(select, weights).df(), f"on all {sum(counts.values()):,} training rows"
    share = limit / others
    frame = con.execute(
        f"SELECT * FROM ({select}) WHERE _source = 'gold' OR hash(_row_id, ?) % 1000000 < ?",
        [*weights, spec.training.seed, int(share * 1_000_000)],
    ).df()
    return frame, (f"on {len(frame):,} of {sum(counts.values()):,} training rows: every gold row "
                   f"({counts.get('gold', 0):,}) and {share:.1%} of the weak and synthetic rows "
                   f"(synthetic.utility_rows {limit:,})")


def _encode(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    out = frame[spec.feature_columns].copy()
    for column in spec.categorical:
        out[column] = pd.Categorical(out[column].astype("string"), categories=spec.features.categorical[column].values)
    return out


def _score_of(train: pd.DataFrame, labels: np.ndarray, test: pd.DataFrame, truth: np.ndarray, spec: DatasetSpec,
              sampled: list[int], seed: int) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed, max_iter=100)
    with threadpool_limits(1):  # OpenMP spinning on a busy machine costs far more than it buys here
        model.fit(_encode(train, spec), labels)
        pred = model.predict(_encode(test, spec))
    return sampled_score(spec.metric, truth, pred, sampled, spec.n_classes, spec.positive_index)


def tstr(synthetic: pd.DataFrame, real: pd.DataFrame, holdout: pd.DataFrame, spec: DatasetSpec,
         seed: int = 0) -> tuple[float, float]:
    """(TSTR, TRTR) on the spec's metric over the classes sampled in `synthetic`
    (`sampled_score`); `synthetic` and `real` hold class names in `LABEL`, `holdout` class indexes."""
    index = {name: i for i, name in enumerate(spec.classes)}
    truth = holdout[LABEL].to_numpy()
    sampled = sorted({index[c] for c in synthetic[LABEL].unique() if c in index})
    syn = _score_of(synthetic, synthetic[LABEL].map(index).to_numpy(), holdout, truth, spec, sampled, seed)
    real_score = _score_of(real, real[LABEL].map(index).to_numpy(), holdout, truth, spec, sampled, seed)
    return syn, real_score


def model_f1(training: pd.DataFrame, holdout: pd.DataFrame, spec: DatasetSpec) -> tuple[float, float]:
    """(without synthetic rows, with them): the platform's trainer on the holdout, on the spec's
    metric over the classes of the synthetic rows (`sampled_score`; all classes when there is none)."""
    from mlinfra_assets.training.batches import LABEL as TRAIN_LABEL
    from mlinfra_assets.training.batches import SOURCE
    from mlinfra_assets.training.trainer import TrainConfig, train

    cfg = TrainConfig.from_spec(spec)
    truth = holdout[LABEL].to_numpy()
    synthetic = training[SOURCE] == "synthetic"
    sampled = sorted(int(c) for c in training.loc[synthetic, TRAIN_LABEL].unique()) or list(range(spec.n_classes))
    scores = []
    for frame in (training[~synthetic], training):
        result = train(frame.reset_index(drop=True), spec, cfg, log=lambda line: None)
        pred = result.model.predict_proba(holdout).argmax(axis=1)
        scores.append(sampled_score(spec.metric, truth, pred, sampled, spec.n_classes, spec.positive_index))
    return scores[0], scores[1]
