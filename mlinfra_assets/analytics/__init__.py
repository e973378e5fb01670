"""Analytics stage: views over every stage's tables, for analysts' plain SQL."""

from mlinfra_assets.analytics.assets import build_views
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import Stage


def build_stage(spec: DatasetSpec) -> Stage:
    return Stage(assets=[build_views(spec)])
