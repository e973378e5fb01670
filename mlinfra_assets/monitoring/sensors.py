"""The drift sensor: a drift report that flags new days launches the retraining job."""

import json
from collections.abc import Mapping

import dagster as dg

from mlinfra_assets import keys

DRIFT_SENSOR = "drift_retrain_sensor"
BATCH = 200


def drifted_days(metadata: Mapping[str, dg.MetadataValue], partition: str | None) -> list[str]:
    """The days a drift_report materialization flags: its `drifted_partitions` list, or its
    own partition when only `drift_detected` is set; none when `drift_detected` is false."""
    detected = metadata.get("drift_detected")
    if detected is None or not detected.value:
        return []
    listed = metadata.get("drifted_partitions")
    if listed is not None and listed.value:
        return [str(day) for day in listed.value]
    return [partition or "unpartitioned"]


def _parse(cursor: str | None) -> tuple[int | None, set[str]]:
    if not cursor:
        return None, set()
    state = json.loads(cursor)
    return state["after"], set(state["requested"])


def build_drift_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name=DRIFT_SENSOR,
        job_name=keys.RETRAIN_JOB,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def drift_retrain_sensor(context: dg.SensorEvaluationContext):
        """Reads new monitoring/drift_report materializations; when they flag days that no
        earlier request covered, requests one retrain_job run for them (run key and tag name
        the days). A backfill that flags many days at once gives one retrain, not one per day.
        The cursor keeps the last event read and every day already requested."""
        after, requested = _parse(context.cursor)
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=keys.DRIFT_REPORT, after_storage_id=after),
            limit=BATCH,
            ascending=True,
        ).records
        if not records:
            return dg.SkipReason("no new drift_report materialization")
        new: list[str] = []
        for record in records:
            materialization = record.asset_materialization
            for day in drifted_days(materialization.metadata, materialization.partition):
                if day not in requested and day not in new:
                    new.append(day)
        requested.update(new)
        context.update_cursor(
            json.dumps({"after": records[-1].storage_id, "requested": sorted(requested)})
        )
        if not new:
            return dg.SkipReason(f"{len(records)} new drift report(s), no newly drifted day")
        new.sort()
        return dg.RunRequest(
            run_key=f"drift:{','.join(new)}",
            tags={"mlinfra/drifted_partitions": ",".join(new)},
        )

    return drift_retrain_sensor
