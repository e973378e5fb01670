"""Synthetic stage: an SDV synthesizer, minority-class rows, and their quality gate."""

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import Stage
from mlinfra_assets.synthetic.assets import (
    QUALITY_CHECK,
    build_synthesizer,
    build_synthetic_quality,
    build_synthetic_rows,
)


def build_stage(spec: DatasetSpec) -> Stage:
    return Stage(assets=[build_synthesizer(spec), build_synthetic_rows(spec), build_synthetic_quality(spec)])


__all__ = ["QUALITY_CHECK", "build_stage"]
