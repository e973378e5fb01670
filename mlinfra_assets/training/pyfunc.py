"""The MLflow pyfunc flavour of a `ScoringModel`: a DataFrame of raw features in,
a DataFrame of class probabilities (`prob_<class>`, the class as `spec.class_column`) out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

try:  # mlflow is a heavy import: only the pyfunc machinery needs this base class
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - mlflow is a dependency
    PythonModel = object  # type: ignore[assignment,misc]

from mlinfra_assets.spec import class_column
from mlinfra_assets.training.model import ScoringModel

ARTIFACT = "scoring_model"


class ScoringPyfunc(PythonModel):
    """Loads the `ScoringModel.save()` folder logged as the `scoring_model` artifact."""

    def load_context(self, context: Any) -> None:
        self.scoring = ScoringModel.load(Path(context.artifacts[ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        probs = self.scoring.predict_proba(model_input)
        return pd.DataFrame(probs, columns=[f"prob_{class_column(c)}" for c in self.scoring.classes])
