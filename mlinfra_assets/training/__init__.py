"""Training stage: the training set, the torch model in MLflow, the champion/challenger gate."""

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import Stage
from mlinfra_assets.training.assets import build_evaluation, build_model, build_training_set
from mlinfra_assets.training.registry import CHALLENGER, CHAMPION, load_scoring_model

__all__ = ["CHALLENGER", "CHAMPION", "build_stage", "load_scoring_model"]


def build_stage(spec: DatasetSpec) -> Stage:
    return Stage(assets=[build_training_set(spec), build_model(spec), build_evaluation(spec)])
