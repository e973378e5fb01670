"""Run assets in-process for a spec: used by `mlinfra run` (make run) and the tests."""

from typing import Any

import dagster as dg

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.source import partitions_for

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def partition_range_tags(spec: DatasetSpec, first: str | None = None, last: str | None = None) -> dict[str, str]:
    """Tags that make one run cover partitions first..last (default: all of them)."""
    partition_keys = partitions_for(spec).get_partition_keys()
    if not partition_keys:
        raise ValueError(
            f"source.start_date {spec.source.start_date} has no complete day yet: no partition to run"
        )
    return {RANGE_START: first or partition_keys[0], RANGE_END: last or partition_keys[-1]}


def run_assets(
    spec: DatasetSpec,
    resources: dict[str, Any],
    selection: str | dg.AssetSelection = "*",
    instance: dg.DagsterInstance | None = None,
    first: str | None = None,
    last: str | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` (partitioned assets over first..last) in one in-process run."""
    from mlinfra_assets.definitions import build_definitions

    defs = build_definitions(spec, resources)
    job = dg.define_asset_job("adhoc_run", selection=selection)
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    return defs.resolve_job_def("adhoc_run").execute_in_process(
        instance=instance,
        tags=partition_range_tags(spec, first, last),
        raise_on_error=raise_on_error,
    )


def run_job(
    spec: DatasetSpec,
    resources: dict[str, Any],
    job_name: str,
    instance: dg.DagsterInstance | None = None,
    first: str | None = None,
    last: str | None = None,
    raise_on_error: bool = False,
) -> dg.ExecuteInProcessResult:
    """Execute one of the code location's jobs in-process (partitioned assets over first..last)."""
    from mlinfra_assets.definitions import build_definitions

    defs = build_definitions(spec, resources)
    return defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        tags=partition_range_tags(spec, first, last),
        raise_on_error=raise_on_error,
    )
