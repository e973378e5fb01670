"""The new-labels sensor: enough gold labels since the last training set -> one retrain_job run."""

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.monitoring.sensors import (
    LABELS_SENSOR,
    NEW_LABELS_TAG,
    TRIGGER_TAG,
    build_new_labels_sensor,
    gold_labels_since_training,
)


def land(instance: dg.DagsterInstance, key: dg.AssetKey, rows: int | None = None) -> None:
    metadata = {"dagster/row_count": rows} if rows is not None else {}
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, metadata=metadata))


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance):
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance))


def test_counts_gold_labels_since_the_last_training_set():
    with dg.DagsterInstance.ephemeral() as instance:
        assert gold_labels_since_training(instance) == (0, None)
        land(instance, keys.GOLD_LABELS, 300)  # before any model: the full job trains on them
        assert gold_labels_since_training(instance)[0] == 0
        land(instance, keys.TRAINING_SET, 5000)
        land(instance, keys.GOLD_LABELS, 420)
        land(instance, keys.GOLD_LABELS, 610)
        new, storage_id = gold_labels_since_training(instance)
        assert new == 310  # 610 now, 300 when the training set was built
        land(instance, keys.TRAINING_SET, 5300)
        assert gold_labels_since_training(instance) == (0, storage_id)


def test_requests_one_retrain_at_the_threshold_and_not_again():
    sensor = build_new_labels_sensor(200)
    assert sensor.job_name == keys.RETRAIN_JOB and sensor.name == LABELS_SENSOR
    with dg.DagsterInstance.ephemeral() as instance:
        land(instance, keys.GOLD_LABELS, 300)
        land(instance, keys.TRAINING_SET, 5000)
        land(instance, keys.GOLD_LABELS, 450)
        below = tick(sensor, instance)
        assert not below.run_requests and "150 new gold label(s)" in below.skip_message

        land(instance, keys.GOLD_LABELS, 520)
        [request] = tick(sensor, instance).run_requests
        assert request.tags[TRIGGER_TAG] == LABELS_SENSOR and request.tags[NEW_LABELS_TAG] == "220"
        # the same landing on the next tick keeps its run key: the daemon launches it once
        assert [r.run_key for r in tick(sensor, instance).run_requests] == [request.run_key]

        land(instance, keys.TRAINING_SET, 5220)  # the retrain built its training set
        after = tick(sensor, instance)
        assert not after.run_requests and "0 new gold label(s)" in after.skip_message


def test_waits_while_a_retraining_run_is_in_flight():
    sensor = build_new_labels_sensor(100)
    with dg.DagsterInstance.ephemeral() as instance:
        land(instance, keys.TRAINING_SET, 5000)
        land(instance, keys.GOLD_LABELS, 150)
        running = instance.create_run_for_job(
            dg.GraphDefinition("g").to_job(name=keys.RETRAIN_JOB), status=dg.DagsterRunStatus.STARTED
        )
        busy = tick(sensor, instance)
        assert not busy.run_requests and running.run_id in busy.skip_message
        instance.report_run_failed(running)
        assert len(tick(sensor, instance).run_requests) == 1


def test_off_when_the_threshold_is_null():
    sensor = build_new_labels_sensor(None)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    with dg.DagsterInstance.ephemeral() as instance:
        land(instance, keys.TRAINING_SET, 5000)
        land(instance, keys.GOLD_LABELS, 10_000)
        assert "off" in tick(sensor, instance).skip_message
