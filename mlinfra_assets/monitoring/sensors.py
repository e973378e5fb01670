"""The retraining sensors (drift or a performance drop -> one retraining per event; enough new
gold labels -> one retraining) and the run-failure sensor."""

import json
from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.monitoring.events import DriftState, persistent, plan
from mlinfra_assets.resources import DataDir

DRIFT_SENSOR = "drift_retrain_sensor"
LABELS_SENSOR = "new_labels_retrain_sensor"
RUN_FAILURE_SENSOR = "run_failure_report"
DAYS_TAG = "mlinfra/drifted_partitions"
TRIGGER_TAG = "mlinfra/trigger"
NEW_LABELS_TAG = "mlinfra/new_gold_labels"
BATCH = 200
# runs that will still build a training set: the new-labels sensor waits for them
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
]


# the assets whose materializations can start a retraining event: (flag, list of partitions)
FLAGS = {
    keys.DRIFT_REPORT: ("drift_detected", "drifted_partitions"),  # features drifted
    keys.PERFORMANCE: ("drop_detected", "dropped_partitions"),  # the metric dropped (performance_rule)
}


def drifted_days(metadata: Mapping[str, dg.MetadataValue], partition: str | None,
                 flags: tuple[str, str] = FLAGS[keys.DRIFT_REPORT]) -> list[str]:
    """The days a drift_report (or performance, with its `flags`) materialization flags: its
    `drifted_partitions` list, or its own partition when only `drift_detected` is set; none
    when `drift_detected` is false."""
    detected = metadata.get(flags[0])
    if detected is None or not detected.value:
        return []
    listed = metadata.get(flags[1])
    if listed is not None and listed.value:
        return [str(day) for day in listed.value]
    return [partition or "unpartitioned"]


def requested_events(instance: dg.DagsterInstance) -> list[list[str]]:
    """The days of every retraining run this sensor requested, from the instance's runs: the
    state survives a lost cursor or a daemon restart."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=keys.RETRAIN_JOB, tags={TRIGGER_TAG: DRIFT_SENSOR}),
        limit=500,
    )
    return [r.tags[DAYS_TAG].split(",") for r in runs if r.tags.get(DAYS_TAG)]


def build_drift_sensor(cooldown_days: int = 7, persistence: int = 1, cadence: str = "daily") -> dg.SensorDefinition:
    @dg.sensor(
        name=DRIFT_SENSOR,
        job_name=keys.RETRAIN_JOB,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def drift_retrain_sensor(context: dg.SensorEvaluationContext):
        """Reads new monitoring/drift_report materializations (drifted features: counted once
        the partition and the thresholds.drift_persistence - 1 partitions before it all drifted)
        and monitoring/performance ones (a metric that dropped, see monitoring/performance_rule.py:
        counted at once); newly flagged days more than
        thresholds.retrain_cooldown_days after the first day of the last drift event start a
        new event: one retrain_job run for all of them (run key and tags name the days). Days
        within the cooldown join the earlier event. The cursor keeps the last event read and
        the days handled; the retraining runs in the instance are the ground truth, so a lost
        cursor or a restarted daemon never requests the same days twice."""
        state = DriftState.loads(context.cursor) or DriftState()
        known = {tuple(e) for e in state.events}
        state.events += [e for e in requested_events(context.instance) if tuple(e) not in known]
        # the oldest BATCH of both assets' new materializations, in the event log's order
        records = sorted(
            (r for key in FLAGS for r in context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=state.after), limit=BATCH, ascending=True,
            ).records),
            key=lambda r: r.storage_id,
        )[:BATCH]
        if not records:
            return dg.SkipReason("no new drift_report or performance materialization")
        drifted: list[str] = []  # partitions whose metric dropped: at once
        features: list[str] = []  # partitions whose features drifted: once drift persisted
        for record in records:
            event = record.asset_materialization
            days = drifted_days(event.metadata, event.partition, FLAGS[event.asset_key])
            (features if event.asset_key == keys.DRIFT_REPORT else drifted).extend(days)
        flagged = set(state.flagged) | set(features)
        held, waiting = persistent(flagged, features, persistence, cadence)
        state.flagged = sorted(flagged)
        new, absorbed = plan(state, drifted + held, cooldown_days)
        state.after = records[-1].storage_id
        state.absorbed = sorted(set(state.absorbed) | set(absorbed))
        if new:
            state.events.append(new)
        context.update_cursor(state.dumps())
        if not new:
            note = f"; {len(absorbed)} day(s) within the cooldown of an earlier event" if absorbed else ""
            if waiting:
                note += (f"; feature drift on {', '.join(waiting)} not yet persistent "
                         f"(thresholds.drift_persistence {persistence} consecutive partitions)")
            return dg.SkipReason(f"{len(records)} new drift or performance report(s), no new drift event{note}")
        return dg.RunRequest(
            run_key=f"drift:{','.join(new)}",
            tags={DAYS_TAG: ",".join(new), TRIGGER_TAG: DRIFT_SENSOR},
        )

    return drift_retrain_sensor


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, before: int | None = None):  # noqa: ANN202
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, before_storage_id=before), limit=1, ascending=False
    ).records
    return records[0] if records else None


def gold_labels_since_training(instance: dg.DagsterInstance) -> tuple[int, int | None]:
    """(gold labels added since the last training set was built, storage id of the newest
    gold_labels materialization): the newest gold_labels row count minus the row count of the
    last gold_labels materialization before that training set. Both come from the event log,
    so the figure survives a daemon restart."""
    gold = _latest(instance, keys.GOLD_LABELS)
    if gold is None:
        return 0, None
    trained = _latest(instance, keys.TRAINING_SET)
    if trained is None:
        return 0, gold.storage_id  # nothing trained yet: the first training is the full job's
    before = _latest(instance, keys.GOLD_LABELS, before=trained.storage_id)

    def rows(record) -> int:  # noqa: ANN001
        value = record.asset_materialization.metadata.get("dagster/row_count")
        return int(value.value) if value is not None else 0

    return rows(gold) - (rows(before) if before is not None else 0), gold.storage_id


def build_new_labels_sensor(min_new: int | None) -> dg.SensorDefinition:
    @dg.sensor(
        name=LABELS_SENSOR,
        job_name=keys.RETRAIN_JOB,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING if min_new else dg.DefaultSensorStatus.STOPPED,
    )
    def new_labels_retrain_sensor(context: dg.SensorEvaluationContext):
        """Requests one retrain_job run when thresholds.retrain_new_gold_labels gold labels have
        landed since the last training set was built (off when null). A drift retrain learns
        from weak labels, and the labeling functions do not know a new concept; the refreshed
        queue steers annotators to it, and their answers reach the model through this sensor.
        No request while a retraining or full run is queued or running; the run key names the
        newest gold_labels materialization, so one landing never requests twice."""
        if not min_new:
            return dg.SkipReason("thresholds.retrain_new_gold_labels is null: off")
        new, storage_id = gold_labels_since_training(context.instance)
        if new < min_new:
            return dg.SkipReason(f"{new} new gold label(s) since the last training set, below {min_new}")
        busy = [run for job in (keys.RETRAIN_JOB, keys.FULL_JOB)
                for run in context.instance.get_runs(dg.RunsFilter(job_name=job, statuses=IN_FLIGHT), limit=1)]
        if busy:
            return dg.SkipReason(f"{new} new gold labels; run {busy[0].run_id} will train on them")
        return dg.RunRequest(
            run_key=f"labels:{storage_id}",
            tags={TRIGGER_TAG: LABELS_SENSOR, NEW_LABELS_TAG: str(new)},
        )

    return new_labels_retrain_sensor


def failure_record(run: dg.DagsterRun, message: str) -> dict:
    """The line the run-failure sensor writes for a failed run."""
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "partition": run.tags.get("dagster/partition")
        or run.tags.get("dagster/asset_partition_range_start"),
        "trigger": run.tags.get(TRIGGER_TAG) or run.tags.get("dagster/schedule_name"),
        "error": message[:2000],
    }


def build_run_failure_sensor() -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name=RUN_FAILURE_SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Reports every failed run of this code location: an error log line and "
        "one JSON line in <data dir>/alerts/run_failures.jsonl.",
    )
    def run_failure_report(context: dg.RunFailureSensorContext, data_dir: DataDir) -> None:
        """Appends the failed run (job, partition, trigger, error) to alerts/run_failures.jsonl."""
        message = context.failure_event.message or "run failed"
        steps = [e for e in context.get_step_failure_events() if e.step_key]
        if steps:
            first = steps[0]
            error = first.event_specific_data.error if first.event_specific_data else None
            while error is not None and error.cause is not None:  # the user's exception
                error = error.cause
            detail = error.message.strip() if error is not None else first.message or ""
            message = f"step {first.step_key} failed: {detail}"
        record = failure_record(context.dagster_run, message)
        path = data_dir.path("alerts", "run_failures.jsonl")
        with path.open("a") as out:
            out.write(json.dumps(record) + "\n")
        context.log.error(f"run {record['run_id']} of {record['job']} failed: {message[:300]}")

    return run_failure_report
