"""Monitoring stage: the champion's daily predictions (and a shadow challenger's), the drift report, its performance
(estimated without labels, realized with them), the retraining sensors
(drift, new gold labels) and the run-failure sensor."""

from mlinfra_assets.monitoring.assets import (
    build_drift_report,
    build_performance,
    build_predictions,
)
from mlinfra_assets.monitoring.sensors import (
    DRIFT_SENSOR,
    LABELS_SENSOR,
    RUN_FAILURE_SENSOR,
    build_drift_sensor,
    build_new_labels_sensor,
    build_run_failure_sensor,
)
from mlinfra_assets.monitoring.shadow_asset import build_shadow
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.stage import Stage

__all__ = ["DRIFT_SENSOR", "LABELS_SENSOR", "RUN_FAILURE_SENSOR", "build_stage"]


def build_stage(spec: DatasetSpec) -> Stage:
    return Stage(
        assets=[build_predictions(spec), build_shadow(spec), build_drift_report(spec), build_performance(spec)],
        sensors=[
            build_drift_sensor(spec.thresholds.retrain_cooldown_days, spec.thresholds.drift_persistence,
                               spec.source.cadence),
            build_new_labels_sensor(spec.thresholds.retrain_new_gold_labels),
            build_run_failure_sensor(),
        ],
    )
