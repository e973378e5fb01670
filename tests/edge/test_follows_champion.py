"""`edge_follows_champion` asks for edge_job when the champion is not the version the edge
variants were built from (a shadow period's promotion, a rollback), once per change."""

import dagster as dg
import mlflow

from mlinfra_assets import keys
from mlinfra_assets.definitions import build_definitions
from mlinfra_assets.edge.sensors import EDGE_SENSOR
from mlinfra_assets.training import registry


def _versions(tracker, name: str, n: int) -> None:  # noqa: ANN001 - an MLflowTracker
    tracker.activate()
    client = mlflow.MlflowClient(tracking_uri=tracker.tracking_uri, registry_uri=tracker.tracking_uri)
    client.create_registered_model(name)
    for _ in range(n):
        with mlflow.start_run() as run:
            mlflow.log_text("stand-in", "model/README")
        client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)


def _built(instance: dg.DagsterInstance, version: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(keys.COMPRESSION_REPORT,
                                                                metadata={"model_version": version}))


def test_edge_job_is_requested_once_when_the_champion_moves(spec, resources):
    defs = build_definitions(spec, resources)
    sensor = defs.resolve_sensor_def(EDGE_SENSOR)
    assert sensor.job_name == keys.EDGE_JOB
    assert {k.to_user_string() for k in defs.resolve_job_def(keys.EDGE_JOB).asset_layer.selected_asset_keys} == {
        "edge/compressed_models", "edge/compression_report"}
    instance = dg.DagsterInstance.ephemeral()
    tracker = resources["mlflow"]

    def tick(cursor=None):  # noqa: ANN001, ANN202
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"mlflow": tracker})
        return sensor.evaluate_tick(context)

    assert "no champion yet" in tick().skip_message
    _versions(tracker, spec.name, 2)
    registry.set_alias(tracker, spec.name, registry.CHAMPION, "1")
    assert "no edge variants built yet" in tick().skip_message
    _built(instance, "1")
    assert tick().skip_message == "the edge variants are of champion v1"
    registry.set_alias(tracker, spec.name, registry.CHAMPION, "2")  # a shadow promotion, say
    [request] = tick().run_requests
    assert request.tags["mlinfra/champion_version"] == "2" and request.tags["mlinfra/edge_built_for"] == "1"
    assert tick().run_requests[0].run_key == request.run_key  # Dagster runs a run key once
    _built(instance, "2")
    assert tick().skip_message == "the edge variants are of champion v2"
    registry.set_alias(tracker, spec.name, registry.CHAMPION, "1")  # a rollback: asked again, a new key
    [back] = tick().run_requests
    assert back.tags["mlinfra/champion_version"] == "1" and back.run_key != request.run_key
