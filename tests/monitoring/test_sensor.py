"""The drift sensor: one retrain per drift event, a cooldown, no duplicate after a restart; the run-failure sensor."""

import json

import dagster as dg
import pytest

from mlinfra_assets import keys
from mlinfra_assets.monitoring.events import DriftState, persistent, plan, previous_key
from mlinfra_assets.monitoring.sensors import (
    DAYS_TAG,
    RUN_FAILURE_SENSOR,
    build_drift_sensor,
    build_run_failure_sensor,
)
from mlinfra_assets.resources import DataDir


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


@dg.op
def noop() -> None:
    pass


@dg.job(name=keys.RETRAIN_JOB)
def stand_in_retrain():
    noop()


def launch(instance: dg.DagsterInstance, request: dg.RunRequest) -> None:
    """What the daemon does with a request: a run of retrain_job with the request's tags."""
    stand_in_retrain.execute_in_process(instance=instance, tags=request.tags)


def test_drift_sensor_requests_each_drifted_day_once():
    sensor = build_drift_sensor(cooldown_days=0)
    assert sensor.job_name == keys.RETRAIN_JOB
    with dg.DagsterInstance.ephemeral() as instance:
        first = tick(sensor, instance, None)
        assert not first.run_requests and "no new drift_report" in first.skip_message

        report_drift(instance, [])
        calm = tick(sensor, instance, first.cursor)
        assert not calm.run_requests and "no new drift event" in calm.skip_message

        report_drift(instance, ["2026-01-16", "2026-01-17"])
        drifted = tick(sensor, instance, calm.cursor)
        [request] = drifted.run_requests
        assert request.run_key == "drift:2026-01-16,2026-01-17"
        assert request.tags[DAYS_TAG] == "2026-01-16,2026-01-17"

        # the same days again (a re-run of the report) and one new day: only the new day
        report_drift(instance, ["2026-01-16", "2026-01-17"])
        report_drift(instance, ["2026-01-17", "2026-01-18"])
        later = tick(sensor, instance, drifted.cursor)
        assert [r.run_key for r in later.run_requests] == ["drift:2026-01-18"]

        idle = tick(sensor, instance, later.cursor)
        assert not idle.run_requests and idle.skip_message


def test_a_performance_drop_starts_an_event_like_drift():
    sensor = build_drift_sensor(cooldown_days=3)
    with dg.DagsterInstance.ephemeral() as instance:
        report_drift(instance, [])
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=keys.PERFORMANCE,
            metadata={"drop_detected": True, "dropped_partitions": dg.MetadataValue.json(["2026-01-20"])},
        ))
        first = tick(sensor, instance, None)
        [request] = first.run_requests
        assert request.tags[DAYS_TAG] == "2026-01-20"
        cursor = first.cursor
        # features drift the next day: within the cooldown of the drop's event
        report_drift(instance, ["2026-01-21"])
        again = tick(sensor, instance, cursor)
        assert not again.run_requests and "cooldown" in again.skip_message
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=keys.PERFORMANCE, metadata={"drop_detected": False, "dropped_partitions": dg.MetadataValue.json([])},
        ))
        calm = tick(sensor, instance, again.cursor)
        assert not calm.run_requests and "no new drift event" in calm.skip_message


def test_cooldown_absorbs_persistent_drift_then_allows_a_new_event():
    sensor = build_drift_sensor(cooldown_days=3)
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = None
        requested = []
        for day in range(16, 24):  # drift every day from the 16th
            report_drift(instance, [f"2026-01-{day}"])
            data = tick(sensor, instance, cursor)
            cursor = data.cursor
            requested += [r.tags[DAYS_TAG] for r in data.run_requests]
        assert requested == ["2026-01-16", "2026-01-19", "2026-01-22"]
        state = DriftState.loads(cursor)
        assert state.absorbed == ["2026-01-17", "2026-01-18", "2026-01-20", "2026-01-21", "2026-01-23"]


@pytest.mark.parametrize(
    ("key", "cadence", "previous"),
    [
        ("2026-03-01", "daily", "2026-02-28"),
        ("2026-01-12", "weekly", "2026-01-05"),
        ("2026-01-01", "monthly", "2025-12-01"),
        ("2026-03-01-00:00", "hourly", "2026-02-28-23:00"),
        ("batch-00010", "daily", "batch-00009"),
        ("batch-00001", "daily", None),
        ("unpartitioned", "daily", None),
    ],
)
def test_previous_partition_of_each_cadence(key, cadence, previous):
    assert previous_key(key, cadence) == previous


def test_drift_persists_only_over_consecutive_partitions():
    flagged = {"2026-01-16", "2026-01-17", "2026-01-18", "2026-01-20", "2026-01-21"}
    held, waiting = persistent(flagged, sorted(flagged), 3, "daily")
    assert held == ["2026-01-18"] and waiting == ["2026-01-16", "2026-01-17", "2026-01-20", "2026-01-21"]
    assert persistent(flagged, ["2026-01-20"], 1, "daily") == (["2026-01-20"], [])
    assert persistent({"batch-00002", "batch-00003"}, ["batch-00003"], 2, "daily") == (["batch-00003"], [])


def test_feature_drift_waits_for_persistence_a_metric_drop_does_not():
    """thresholds.drift_persistence 3: one drifted day, then a quiet one, then three in a row;
    the request comes on the third of them, and a metric drop still requests at once."""
    sensor = build_drift_sensor(cooldown_days=0, persistence=3)
    with dg.DagsterInstance.ephemeral() as instance:
        cursor, requested, skipped = None, [], []
        for day, drifted in [(14, True), (15, False), (16, True), (17, True), (18, True), (19, True)]:
            report_drift(instance, [f"2026-01-{day}"] if drifted else [])
            data = tick(sensor, instance, cursor)
            cursor = data.cursor
            requested += [r.tags[DAYS_TAG] for r in data.run_requests]
            skipped.append(data.skip_message or "")
        assert requested == ["2026-01-18", "2026-01-19"]
        assert "feature drift on 2026-01-14 not yet persistent (thresholds.drift_persistence 3" in skipped[0]
        assert "2026-01-17 not yet persistent" in skipped[3]
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=keys.PERFORMANCE,
            metadata={"drop_detected": True, "dropped_partitions": dg.MetadataValue.json(["2026-01-25"])},
        ))
        [drop] = tick(sensor, instance, cursor).run_requests
        assert drop.tags[DAYS_TAG] == "2026-01-25"


def test_no_duplicate_after_a_daemon_restart(tmp_path):
    """The instance reopened from the same DAGSTER_HOME, the cursor lost: the runs tell."""
    sensor = build_drift_sensor(cooldown_days=7)
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        report_drift(instance, ["2026-01-16"])
        [request] = tick(sensor, instance, None).run_requests
        launch(instance, request)
    with dg.DagsterInstance.local_temp(str(tmp_path)) as reopened:
        report_drift(reopened, ["2026-01-17"])
        for cursor in (None, "not json"):  # lost or corrupt: rebuilt from the runs
            again = tick(sensor, reopened, cursor)
            assert not again.run_requests and "cooldown" in again.skip_message
        report_drift(reopened, ["2026-01-25"])  # a new event after the cooldown
        [later] = tick(sensor, reopened, None).run_requests
        assert later.tags[DAYS_TAG] == "2026-01-25"


def test_plan_ignores_unpartitioned_days_in_cooldowns():
    state = DriftState(events=[["2026-01-16"]])
    assert plan(state, ["unpartitioned", "2026-01-17"], 7) == (["unpartitioned"], ["2026-01-17"])


@dg.op
def broken() -> None:
    raise ValueError("registered model 'card_fraud' has no alias 'champion'")


@dg.job(name=keys.DAILY_JOB)
def failing_daily():
    broken()


def test_run_failure_sensor_reports_the_failed_step(tmp_path):
    sensor = build_run_failure_sensor()
    with dg.DagsterInstance.ephemeral() as instance:
        result = failing_daily.execute_in_process(
            instance=instance, raise_on_error=False, tags={"dagster/partition": "2026-01-21"}
        )
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name=RUN_FAILURE_SENSOR,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
            resources={"data_dir": DataDir(root=str(tmp_path))},
        ).for_run_failure()
        sensor(context)
    [line] = (tmp_path / "alerts" / "run_failures.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["job"] == keys.DAILY_JOB and record["partition"] == "2026-01-21"
    assert record["run_id"] == result.run_id
    assert "step broken failed" in record["error"] and "no alias 'champion'" in record["error"]


KEPT = DriftState(after=41, events=[["2026-01-21", "2026-01-22"]], absorbed=["2026-01-23"],
                  flagged=["2026-01-21", "2026-01-22", "2026-01-23"])


@pytest.mark.parametrize(
    "cursor, state",
    [
        (None, None),  # no cursor: the sensor rebuilds its state from the instance's runs
        ("", None),
        ("not json", None),
        ("[1, 2]", None),  # JSON, but not the state's shape
        ('{"events": 5}', None),
        ('{"after": 3, "events": [7]}', None),
        ("{}", DriftState()),
        ('{"after": 12}', DriftState(after=12)),
        (KEPT.dumps(), KEPT),  # what the sensor wrote reads back as it was
    ],
)
def test_state_reads_any_cursor(cursor, state):
    assert DriftState.loads(cursor) == state
