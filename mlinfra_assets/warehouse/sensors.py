"""The new-files sensor: without a timestamp, each new file of the source glob is a batch."""

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.partitions import batches_name, partitions_for

NEW_FILES_SENSOR = "new_source_files"


def build_new_files_sensor(spec: DatasetSpec) -> dg.SensorDefinition:
    partitions = partitions_for(spec)

    @dg.sensor(
        name=NEW_FILES_SENSOR,
        job_name=keys.DAILY_JOB,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Each new file matching {spec.source.path} becomes a batch partition of "
        f"{batches_name(spec)}, and one {keys.DAILY_JOB} run ingests, scores and checks it.",
    )
    def new_source_files(context: dg.SensorEvaluationContext, warehouse: Warehouse):
        """Adds one batch per file of the source glob that no batch holds yet (raw.batches) and
        no waiting batch will take, and requests the batch job for each."""
        from mlinfra_assets.runner import batch_keys_to_add

        registered = list(context.instance.get_dynamic_partitions(batches_name(spec)))
        missing, new = batch_keys_to_add(spec, warehouse.path, registered)
        if not new:
            return dg.SensorResult(
                skip_reason=f"no new file matches {spec.source.path}",
                dynamic_partitions_requests=[partitions.build_add_request(missing)] if missing else [],
            )
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"batch:{k}", partition_key=k) for k in new],
            dynamic_partitions_requests=[partitions.build_add_request(missing + new)],
        )

    return new_source_files
