"""Imported by the step forkserver last (mlinfra_assets/executor.py): opens the run's Dagster
instance once and closes it, so that each forked step opens it in 0.07 s instead of 0.8 s (the
SQLite dialect, Alembic and its revision scripts are then imported and read already).

Nothing stays open: the instance is disposed before any step is forked from this process.
"""

import os

from mlinfra_assets.executor import INSTANCE_ENV


def warm() -> None:
    serialized = os.environ.get(INSTANCE_ENV)
    if not serialized:
        return
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import deserialize_value

    try:
        with dg.DagsterInstance.from_ref(deserialize_value(serialized, InstanceRef)):
            pass
    except Exception:  # noqa: BLE001 - only a warm-up: the forkserver dies on any error but an
        # ImportError, and every step would fail with it; a step that opens the instance itself
        # meets the same error, with Dagster's message, in its own event log
        return


warm()
