"""Warehouse stage: demo generator, raw ingest, quality gate."""

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import Stage
from mlinfra_assets.warehouse.assets import RAW_SUITE_CHECK, build_demo_source, build_raw
from mlinfra_assets.warehouse.gold_asset import build_gold


def build_stage(spec: DatasetSpec) -> Stage:
    import dagster as dg

    from mlinfra_assets import keys

    source = (
        build_demo_source(spec)
        if spec.demo is not None
        else dg.AssetSpec(keys.source_key(spec), group_name="warehouse", description="Your source table.")
    )
    gold = [build_gold(spec)] if spec.gold is not None else []  # raw.gold: the spec's ground truth
    return Stage(assets=[source, build_raw(spec), *gold])


__all__ = ["RAW_SUITE_CHECK", "build_stage"]
