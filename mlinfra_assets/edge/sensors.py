"""`edge_follows_champion`: the edge variants rebuilt when the champion changes outside
`retrain_job` (a shadow period's promotion, `mlinfra model promote`), so the `champion-<variant>`
aliases never point at variants of an earlier champion for longer than a sensor tick and a build."""

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.resources import MLflowTracker
from mlinfra_assets.spec import DatasetSpec

EDGE_SENSOR = "edge_follows_champion"


def built_for(instance: dg.DagsterInstance) -> tuple[str | None, int | None]:
    """(the champion version the latest edge/compression_report registered variants of, that
    materialization's storage id); (None, None) before any."""
    records = instance.fetch_materializations(keys.COMPRESSION_REPORT, limit=1, ascending=False).records
    if not records or records[0].asset_materialization is None:
        return None, None
    found = records[0].asset_materialization.metadata.get("model_version")
    return (None if found is None else str(found.value)), records[0].storage_id


def build_edge_sensor(spec: DatasetSpec) -> dg.SensorDefinition:
    @dg.sensor(name=EDGE_SENSOR, job_name=keys.EDGE_JOB, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Requests edge_job when the champion is not the version the edge variants were "
                           "built from (a shadow promotion, a rollback).")
    def edge_follows_champion(context: dg.SensorEvaluationContext, mlflow: MLflowTracker):
        from mlinfra_assets.training import registry

        champion = registry.champion_version(mlflow, spec.name)
        if champion is None:
            return dg.SkipReason("no champion yet")
        built, storage_id = built_for(context.instance)
        if built is None:
            return dg.SkipReason("no edge variants built yet: retrain_job builds them with the first champion")
        if built == champion:
            return dg.SkipReason(f"the edge variants are of champion v{champion}")
        # one request per (champion, latest build): a tick while the build runs asks nothing new
        return dg.RunRequest(run_key=f"edge-for-v{champion}-after-{storage_id}",
                             tags={"mlinfra/champion_version": champion, "mlinfra/edge_built_for": built})

    return edge_follows_champion
