"""The project's Dagster instance (dagster.yaml's `instance_class`): Dagster's own SQLite storage
under $DAGSTER_HOME, except for how a step claims a pool slot (atomically across processes) and
how it waits for one.

Every step that touches the warehouse holds the `warehouse` pool (limit 1), so runs side by side
take turns step by step. While all of a run's ready steps wait for a slot and none of its steps
runs, Dagster's multiprocess executor loops without sleeping: the waiting run's process takes a
whole core (two runs of two 8 s steps side by side: 20 and 31 s of CPU against 9 s alone), on a
2-core machine half of what the running step could use. And a blocked step asks again after 1 s,
then 1.1x longer each time, up to 15 s, while the freed slot, assigned to the step that waited
longest, stays unused until that step asks.

Here a blocked claim of a run that holds no slot waits CLAIM_WAIT_S before it answers "blocked,
ask again now": that loop turns five times a second (an indexed SQLite read each) and takes a
freed slot within CLAIM_WAIT_S. A run with a step of its own running is not held up (the loop
already waits on that step's events): its blocked steps ask again every CLAIM_WAIT_S.
"""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
import yaml
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import ConcurrencySlotsTable
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData
from dagster._utils.concurrency import ConcurrencyClaimStatus

CLAIM_WAIT_S = 0.2
CLAIM_LOCK = "concurrency_claims.lock"  # in the event log's folder: one claim or free at a time


class PromptClaimEventLogStorage(SqliteEventLogStorage):
    """SQLite event log whose pool claims are atomic across processes and whose blocked claims
    wait as the module says.

    Dagster's SQL claim reads a free slot, then updates it by id (SQLite ignores the SELECT's FOR
    UPDATE): two runs whose first steps claimed within the same few milliseconds both got the
    `warehouse` slot of 1 (seen in the concurrency campaign, two steps at once). Here each claim
    and each free holds an exclusive file lock beside the index database, so they follow one
    another whatever the number of run processes."""

    @contextmanager
    def _serialized(self) -> Iterator[None]:
        with open(os.path.join(self._base_dir, CLAIM_LOCK), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def free_concurrency_slot_for_step(self, run_id: str, step_key: str) -> None:
        with self._serialized():
            super().free_concurrency_slot_for_step(run_id, step_key)

    def free_concurrency_slots_for_run(self, run_id: str) -> None:
        with self._serialized():
            super().free_concurrency_slots_for_run(run_id)

    def claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None
    ) -> ConcurrencyClaimStatus:
        with self._serialized():
            status = super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
        if status.is_claimed:
            return status
        if self._holds_a_slot(run_id):
            return status.with_sleep_interval(CLAIM_WAIT_S)
        time.sleep(CLAIM_WAIT_S)
        return status.with_sleep_interval(0.0)

    def _holds_a_slot(self, run_id: str) -> bool:
        with self.index_connection() as conn:
            held = conn.execute(
                db.select(db.func.count()).select_from(ConcurrencySlotsTable)
                .where(ConcurrencySlotsTable.c.run_id == run_id)
            ).scalar()
        return bool(held)


class PromptClaimSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (same files, same layout) with PromptClaimEventLogStorage."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data)
        self._event_log_storage.dispose()
        self._event_log_storage = PromptClaimEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any) -> "PromptClaimSqliteStorage":
        return cls.from_local(inst_data=inst_data, **config_value)


class MlinfraInstance(DagsterInstance):
    """DagsterInstance whose default storage is PromptClaimSqliteStorage; a `storage:` section in
    dagster.yaml (Postgres, say) still replaces it."""

    @classmethod
    def config_schema(cls) -> dict:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> dict:
        defaults = dict(InstanceRef.config_defaults(base_dir))
        defaults["storage"] = ConfigurableClassData(
            __name__, PromptClaimSqliteStorage.__name__, yaml.dump({"base_dir": base_dir}, default_flow_style=False)
        )
        return defaults
