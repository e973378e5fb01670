"""Do the synthetic rows help a model? Scored on the oracle holdout (Dagster-free).

- TSTR vs TRTR: scikit-learn's HistGradientBoostingClassifier trained on rows sampled from the
  synthesizer (train synthetic) and, with the same settings, on the synthesizer's real fit rows
  (train real); both tested on the real holdout rows with their gold labels. A simple, fast
  model on purpose: it measures the data, not the platform's training loop.
- The final model with and without synthetic rows: the platform's trainer
  (`training/trainer.py`, `spec.training` settings) on the training set exactly as the
  training stage builds it (`training/dataset.training_set_sql`: gold + weak + synthetic rows,
  weights, soft targets), once with the candidate synthetic rows and once without them.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.synthetic.data import LABEL

PUBLISHED = "synthetic.synthetic_rows"


@dataclass(frozen=True)
class UtilityResult:
    tstr_f1: float  # train synthetic, test real
    trtr_f1: float  # train real, test real
    model_f1_without: float  # the platform's trainer, real rows only
    model_f1_with: float  # the platform's trainer, real + synthetic rows
    holdout_rows: int
    train_rows: int

    @property
    def tstr_ratio(self) -> float:
        return self.tstr_f1 / self.trtr_f1 if self.trtr_f1 > 0 else float("nan")

    def scores(self) -> pd.DataFrame:
        figures = {
            "TSTR F1": self.tstr_f1, "TRTR F1": self.trtr_f1, "TSTR/TRTR": self.tstr_ratio,
            "Model F1 Without Synthetic": self.model_f1_without, "Model F1 With Synthetic": self.model_f1_with,
            "Model F1 Gain": self.model_f1_with - self.model_f1_without,
        }
        return pd.DataFrame(
            [{"metric": "utility", "property": k, "column_name": None, "score": float(v)} for k, v in figures.items()]
        )


def holdout_frame(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> pd.DataFrame:
    """The evaluation holdout rows with their gold label (class index), as the training stage scores them."""
    from mlinfra_assets.training.dataset import holdout_sql

    return con.execute(holdout_sql(spec)).df()


def training_frame(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, candidates: str) -> pd.DataFrame:
    """The training stage's training set, its synthetic rows read from `candidates`."""
    from mlinfra_assets.training.dataset import source_weights, training_set_sql

    select = training_set_sql(spec)
    if PUBLISHED not in select:
        raise RuntimeError(f"training/dataset.training_set_sql no longer reads {PUBLISHED}: update synthetic/utility.py")
    return con.execute(select.replace(PUBLISHED, candidates), source_weights(spec)).df()


def _encode(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    out = frame[spec.feature_columns].copy()
    for column in spec.categorical:
        out[column] = pd.Categorical(out[column].astype("string"), categories=spec.features.categorical[column].values)
    return out


def _f1_of(train: pd.DataFrame, labels: np.ndarray, test: pd.DataFrame, truth: np.ndarray, spec: DatasetSpec,
           seed: int) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from mlinfra_assets.training.metrics import f1_positive

    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed, max_iter=100)
    with threadpool_limits(1):  # OpenMP spinning on a busy machine costs far more than it buys here
        model.fit(_encode(train, spec), labels)
        pred = model.predict(_encode(test, spec))
    return f1_positive(truth, pred, spec.positive_index)


def tstr(synthetic: pd.DataFrame, real: pd.DataFrame, holdout: pd.DataFrame, spec: DatasetSpec,
         seed: int = 0) -> tuple[float, float]:
    """(TSTR F1, TRTR F1) of the positive class; `synthetic` and `real` hold class names in `label`,
    `holdout` class indexes."""
    index = {name: i for i, name in enumerate(spec.classes)}
    truth = holdout[LABEL].to_numpy()
    syn_f1 = _f1_of(synthetic, synthetic[LABEL].map(index).to_numpy(), holdout, truth, spec, seed)
    real_f1 = _f1_of(real, real[LABEL].map(index).to_numpy(), holdout, truth, spec, seed)
    return syn_f1, real_f1


def model_f1(training: pd.DataFrame, holdout: pd.DataFrame, spec: DatasetSpec) -> tuple[float, float]:
    """(F1 without synthetic rows, F1 with them) of the platform's trainer on the holdout."""
    from mlinfra_assets.training.metrics import f1_positive
    from mlinfra_assets.training.trainer import TrainConfig, train

    cfg = TrainConfig.from_spec(spec)
    truth = holdout[LABEL].to_numpy()
    scores = []
    for frame in (training[training["source"] != "synthetic"], training):
        result = train(frame.reset_index(drop=True), spec, cfg, log=lambda line: None)
        pred = result.model.predict_proba(holdout).argmax(axis=1)
        scores.append(f1_positive(truth, pred, spec.positive_index))
    return scores[0], scores[1]
