"""Warehouse stage: the demo source, raw ingest (time partitions or batches), quality gate, gold."""

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import Stage
from mlinfra_assets.warehouse.assets import (
    RAW_SUITE_CHECK,
    SOURCE_GROUP,
    build_demo_source,
    build_raw,
)
from mlinfra_assets.warehouse.gold_asset import build_gold
from mlinfra_assets.warehouse.sensors import NEW_FILES_SENSOR, build_new_files_sensor
from mlinfra_assets.warehouse.source import is_glob


def build_stage(spec: DatasetSpec) -> Stage:
    import dagster as dg

    from mlinfra_assets import keys

    source = (
        build_demo_source(spec)
        if spec.demo is not None
        else dg.AssetSpec(keys.source_key(spec), group_name=SOURCE_GROUP,
                          description="Your source table (raw ingests it).")
    )
    gold = [build_gold(spec)] if spec.gold is not None else []  # raw.gold: the spec's ground truth
    # without a timestamp each new file of a source glob is a batch: the sensor ingests it
    sensors = [build_new_files_sensor(spec)] if not spec.has_timestamp and is_glob(spec) else []
    return Stage(assets=[source, build_raw(spec), *gold], sensors=sensors)


__all__ = ["NEW_FILES_SENSOR", "RAW_SUITE_CHECK", "build_stage"]
