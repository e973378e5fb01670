"""Edge stage."""

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import Stage


def build_stage(spec: DatasetSpec) -> Stage:
    return Stage()
