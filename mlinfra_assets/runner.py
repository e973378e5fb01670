"""Run assets in-process for a spec: used by `mlinfra run` (make run) and the tests.

A run covers every partition. With a timestamp they are the time windows from
`source.start_date`; without one they are ingest batches, and a run that ingests (its job
holds raw/<source>) first adds the new batch(es) on the instance: one per new file of a
source glob, or one when a table or single file has rows no batch holds yet (none when
nothing is new: the run then replaces the batches it has).
"""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import dagster as dg
import duckdb

from mlinfra_assets import keys
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.partitions import (
    batch_key,
    batch_number,
    batches_name,
    partitions_for,
)

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def partition_range_tags(
    spec: DatasetSpec,
    first: str | None = None,
    last: str | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dict[str, str]:
    """Tags that make one run cover partitions first..last (default: all of them); batches are
    read from `instance` (none yet: no tags, for a job without partitioned assets)."""
    if not spec.has_timestamp:
        partition_keys = instance.get_dynamic_partitions(batches_name(spec)) if instance else []
        if not partition_keys:
            return {}
    else:
        partition_keys = partitions_for(spec).get_partition_keys()
    if not partition_keys:
        raise ValueError(
            f"source.start_date {spec.source.start_date} has no complete {spec.source.cadence} "
            "partition yet: no partition to run"
        )
    return {RANGE_START: first or partition_keys[0], RANGE_END: last or partition_keys[-1]}


def pending_batches(spec: DatasetSpec, warehouse_path: str, registered: list[str]) -> tuple[list[int], int]:
    """(batch numbers ingested so far, how many new batches the source holds beyond the
    `registered` keys not ingested yet).

    A file glob: one new batch per matching file that no batch holds. A table or a single
    file: one when the source has a row whose id no batch holds (or nothing was ingested).
    """
    from mlinfra_assets.warehouse.ingest import manifest
    from mlinfra_assets.warehouse.source import is_glob, source_files, source_select

    recorded, has_new = None, True
    if Path(warehouse_path).exists():
        try:
            con = duckdb.connect(warehouse_path, read_only=True)
        except duckdb.IOException:  # a step holds the warehouse: its batches are on the instance
            return [batch_number(k) for k in registered], 0
        try:
            recorded = manifest(con, spec)
            if not is_glob(spec) and len(recorded):
                sql, params = source_select(spec)
                rid = spec.id_column
                has_new = con.execute(
                    f"SELECT count(*) > 0 FROM {sql} AS s WHERE CAST(s.{rid} AS VARCHAR) NOT IN ("
                    f"SELECT CAST({rid} AS VARCHAR) FROM {spec.raw_table} UNION ALL "
                    "SELECT row_id FROM raw.quarantine WHERE source_table = ? AND row_id IS NOT NULL)",
                    [*params, spec.raw_table],
                ).fetchall()[0][0]
        finally:
            con.close()
    ingested = sorted({int(b) for b in recorded["batch"]}) if recorded is not None else []
    waiting = [k for k in registered if batch_number(k) not in ingested]
    if is_glob(spec):
        held = set(recorded["file"]) if recorded is not None else set()
        new = len([f for f in source_files(spec) if f not in held])
    else:
        new = int(bool(has_new))
    return ingested, max(0, new - len(waiting))


def batch_keys_to_add(spec: DatasetSpec, warehouse_path: str, registered: list[str],
                      add_new: bool = True) -> tuple[list[str], list[str]]:
    """The batch keys to add to an instance that has `registered`: (those of batches the
    warehouse holds that the instance lacks (a fresh instance), and with `add_new` one per
    new batch of the source)."""
    ingested, new = pending_batches(spec, warehouse_path, registered)
    numbers = {batch_number(k) for k in registered}
    missing = [n for n in ingested if n not in numbers]
    top = max(numbers | set(ingested), default=0)
    return [batch_key(n) for n in missing], [batch_key(top + i + 1) for i in range(new if add_new else 0)]


def register_batches(spec: DatasetSpec, warehouse_path: str, instance: dg.DagsterInstance,
                     add_new: bool = True) -> list[str]:
    """Make the instance's batch partitions match the warehouse (the batches raw.batches
    records) and, with `add_new`, add the source's new batch(es). Returns the keys added."""
    name = batches_name(spec)
    missing, new = batch_keys_to_add(spec, warehouse_path, list(instance.get_dynamic_partitions(name)), add_new)
    added = missing + new
    if added:
        instance.add_dynamic_partitions(name, added)
    return added


class RunWatcher(Protocol):
    """Told the run's steps before it starts, then called with each event the instance stores
    (mlinfra_assets.progress.RunProgress shows them)."""

    def planned(self, steps: list[str]) -> None: ...

    def __call__(self, entry: dg.EventLogEntry) -> None: ...


def _execute(
    spec: DatasetSpec,
    defs: dg.Definitions,
    job_name: str,
    resources: dict[str, Any],
    instance: dg.DagsterInstance | None,
    first: str | None,
    last: str | None,
    raise_on_error: bool,
    run_id: str | None = None,
    watch: RunWatcher | None = None,
) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(job_name)
    if not spec.has_timestamp or watch is not None:
        instance = instance or dg.DagsterInstance.ephemeral()
    if not spec.has_timestamp:
        ingests = keys.raw_key(spec) in job.asset_layer.selected_asset_keys
        register_batches(spec, resources["warehouse"].path, instance, add_new=ingests)
    run_id = run_id or str(uuid.uuid4())
    if watch is not None:
        watch.planned([node.name for node in job.graph.nodes])
        instance.add_event_listener(run_id, watch)
    with _sigterm_kept():
        return job.execute_in_process(
            instance=instance,
            tags=partition_range_tags(spec, first, last, instance),
            raise_on_error=raise_on_error,
            run_id=run_id,
        )


@contextmanager
def _sigterm_kept() -> Iterator[None]:
    """SIGTERM's handler as it was before the run, after it. Dagster maps SIGTERM to SIGINT's
    handler around an in-process run (dagster._utils.interrupts) and leaves it there: in a process
    started with SIGINT ignored (a background job of a script) SIGTERM was ignored from the first
    run on, so `kill` no longer stopped `mlinfra run`, nor any process it started afterwards."""
    main = threading.current_thread() is threading.main_thread()  # handlers live on the main thread
    before = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if main and before is not None:
            signal.signal(signal.SIGTERM, before)


def run_assets(
    spec: DatasetSpec,
    resources: dict[str, Any],
    selection: str | dg.AssetSelection = "*",
    instance: dg.DagsterInstance | None = None,
    first: str | None = None,
    last: str | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` (partitioned assets over first..last) in one in-process run;
    without a timestamp, a selection that ingests adds the source's new batch first."""
    from mlinfra_assets.definitions import build_definitions

    defs = build_definitions(spec, resources)
    job = dg.define_asset_job("adhoc_run", selection=selection)
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    return _execute(spec, defs, "adhoc_run", resources, instance, first, last, raise_on_error)


def run_job(
    spec: DatasetSpec,
    resources: dict[str, Any],
    job_name: str,
    instance: dg.DagsterInstance | None = None,
    first: str | None = None,
    last: str | None = None,
    raise_on_error: bool = False,
    run_id: str | None = None,
    watch: RunWatcher | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute one of the code location's jobs in-process over all partitions (first..last);
    without a timestamp, a job that ingests adds the source's new batch(es) first. `run_id`
    names the run (default: a new one); `watch` sees its steps and events as they happen."""
    from mlinfra_assets.definitions import build_definitions

    defs = build_definitions(spec, resources)
    return _execute(spec, defs, job_name, resources, instance, first, last, raise_on_error, run_id, watch)
