"""The warehouse file itself: where it is and how a process opens it past another's lock.

Kept free of Dagster (and of pandas) so that `mlinfra query`, which only reads, starts in about
half a second instead of the ~1.5 s an import of Dagster costs; the `Warehouse` resource opens
its connections through `open_duckdb` too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb

LOCK_MESSAGE = "Could not set lock"


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse file for writing."""


def default_data_dir() -> Path:
    """`data/` beside the spec file (MLINFRA_SPEC, or the demo's mlinfra.yaml at the project root)."""
    from mlinfra_assets.spec import DEFAULT_SPEC

    return Path(os.environ.get("MLINFRA_SPEC") or DEFAULT_SPEC).resolve().parent / "data"


def data_root(data_dir: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """`data_dir`, else MLINFRA_DATA_DIR of `env`, else `data/` beside the spec file."""
    return Path(data_dir or env.get("MLINFRA_DATA_DIR") or default_data_dir()).resolve()


def warehouse_path(root: Path, env: Mapping[str, str]) -> str:
    """MLINFRA_WAREHOUSE of `env`, else `warehouse.duckdb` in the data folder `root`."""
    return env.get("MLINFRA_WAREHOUSE") or str(root / "warehouse.duckdb")


@contextmanager
def open_duckdb(
    path: str | os.PathLike[str], read_only: bool = False, lock_timeout_s: float = 120.0,
    threads: int = 2, memory_limit: str = "3GB",
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file `path`, closed when the block ends.

    A file another process holds for writing is retried (50 ms doubling to 1 s) for up to
    `lock_timeout_s`, then `WarehouseBusy` names the file; a reader of a file that does not exist
    gets `FileNotFoundError` saying how to create it.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(
            f"warehouse {path} does not exist yet: run `make run` (or materialize the "
            "warehouse assets) first"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(
                str(path), read_only=read_only, config={"threads": threads, "memory_limit": memory_limit},
            )
            break
        except duckdb.IOException as exc:
            if LOCK_MESSAGE not in str(exc) or time.monotonic() > deadline:
                if LOCK_MESSAGE in str(exc):
                    raise WarehouseBusy(
                        f"warehouse {path} is locked by another process for more than "
                        f"{lock_timeout_s:.0f}s; try again when the running step ends"
                    ) from exc
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        yield con
    finally:
        con.close()
