"""Edge stage: compressed variants of the trained model and their trade-off report."""

from mlinfra_assets.edge.assets import build_compressed_models, build_compression_report
from mlinfra_assets.edge.sensors import EDGE_SENSOR, build_edge_sensor
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import Stage


def build_stage(spec: DatasetSpec) -> Stage:
    """The edge assets: `edge/compressed_models` (from the champion) and `edge/compression_report`;
    the sensor that rebuilds them when the champion moves outside retrain_job."""
    return Stage(assets=[build_compressed_models(spec), build_compression_report(spec)],
                 sensors=[build_edge_sensor(spec)])


__all__ = ["EDGE_SENSOR", "build_stage"]
