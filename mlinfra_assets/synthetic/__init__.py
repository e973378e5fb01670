"""Synthetic stage: an SDV synthesizer, minority-class rows, and their quality gate.

`synthetic.synthetic_rows` (what training reads) holds only rows that passed the gates; when they
failed it is empty and `withheld_reason(con)` (or the asset's `withheld_reason` metadata) says why.
"""

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import Stage
from mlinfra_assets.synthetic.assets import (
    QUALITY_CHECK,
    build_synthesizer,
    build_synthetic_quality,
    build_synthetic_rows,
)
from mlinfra_assets.synthetic.gates import withheld_reason


def build_stage(spec: DatasetSpec) -> Stage:
    return Stage(assets=[build_synthesizer(spec), build_synthetic_rows(spec), build_synthetic_quality(spec)])


__all__ = ["QUALITY_CHECK", "build_stage", "withheld_reason"]
