"""The drift sensor: one retrain request for newly drifted days, none without drift, never twice."""

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.monitoring.sensors import build_drift_sensor


def report_drift(instance: dg.DagsterInstance, days: list[str]) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=keys.DRIFT_REPORT,
            metadata={
                "drift_detected": bool(days),
                "drifted_partitions": dg.MetadataValue.json(days),
            },
        )
    )


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None):
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_drift_sensor_requests_each_drifted_day_once():
    sensor = build_drift_sensor()
    assert sensor.job_name == keys.RETRAIN_JOB
    with dg.DagsterInstance.ephemeral() as instance:
        first = tick(sensor, instance, None)
        assert not first.run_requests and "no new drift_report" in first.skip_message

        report_drift(instance, [])
        calm = tick(sensor, instance, first.cursor)
        assert not calm.run_requests and "no newly drifted day" in calm.skip_message

        report_drift(instance, ["2026-01-16", "2026-01-17"])
        drifted = tick(sensor, instance, calm.cursor)
        [request] = drifted.run_requests
        assert request.run_key == "drift:2026-01-16,2026-01-17"
        assert request.tags["mlinfra/drifted_partitions"] == "2026-01-16,2026-01-17"

        # the same days again (a re-run of the report) and one new day: only the new day
        report_drift(instance, ["2026-01-16", "2026-01-17"])
        report_drift(instance, ["2026-01-17", "2026-01-18"])
        later = tick(sensor, instance, drifted.cursor)
        assert [r.run_key for r in later.run_requests] == ["drift:2026-01-18"]

        # nothing new since: skip, and the cursor stays usable
        idle = tick(sensor, instance, later.cursor)
        assert not idle.run_requests and idle.skip_message
