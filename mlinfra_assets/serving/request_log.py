"""The served requests, written to `monitoring.served_requests` in short transactions.

Requests are kept in memory (at most `max_buffered` records; beyond that the oldest are
dropped and counted) and written every `flush_s` seconds by a background thread. DuckDB lets
one process write the file at a time: while a pipeline step holds it, a flush waits up to
`lock_timeout_s` and, if the file stays busy, keeps the records for the next flush, so serving
never waits on the warehouse.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from mlinfra_assets.resources import transaction
from mlinfra_assets.warehouse_file import WarehouseBusy, open_duckdb

DDL = (Path(__file__).parent / "sql" / "served_requests_ddl.sql").read_text()
TABLE = "monitoring.served_requests"


@dataclass(frozen=True)
class ServedRequest:
    served_at: datetime
    model_name: str
    alias: str
    model_version: str | None
    rows: int | None  # None: the request was refused before its rows were read
    latency_ms: float
    status: int
    error: str | None
    payload: str | None


class RequestLog:
    def __init__(self, warehouse_path: str, flush_s: float = 5.0, lock_timeout_s: float = 30.0,
                 max_buffered: int = 100_000):
        self.path, self.flush_s, self.lock_timeout_s = warehouse_path, flush_s, lock_timeout_s
        self.pending: deque[ServedRequest] = deque(maxlen=max_buffered)
        self.dropped = self.written = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="served-requests", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def record(self, request: ServedRequest) -> None:
        with self._lock:
            if len(self.pending) == self.pending.maxlen:
                self.dropped += 1
            self.pending.append(request)

    def flush(self, lock_timeout_s: float | None = None) -> int:
        """Write what is pending in one transaction; returns the rows written (0 when the file
        stayed busy: the records are kept for the next flush)."""
        with self._lock:
            batch = list(self.pending)
            self.pending.clear()
        if not batch:
            return 0
        frame = pd.DataFrame([asdict(r) for r in batch]).astype({"rows": "Int64", "status": "int32"})
        try:
            with open_duckdb(self.path, lock_timeout_s=self.lock_timeout_s if lock_timeout_s is None
                             else lock_timeout_s, threads=1, memory_limit="256MB") as con:
                with transaction(con, _served=frame):
                    con.execute(DDL)
                    con.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM _served")
        except Exception as exc:
            with self._lock:  # back in front of what arrived meanwhile, oldest first
                room = self.pending.maxlen - len(self.pending)
                self.dropped += max(0, len(batch) - room)
                self.pending.extendleft(reversed(batch[-room:] if room else []))
            if isinstance(exc, WarehouseBusy):
                return 0
            raise
        self.written += len(batch)
        return len(batch)

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - a broken flush must not stop serving; it is said
                print(f"mlinfra serve: could not write {TABLE}: {exc}", file=sys.stderr, flush=True)

    def close(self, lock_timeout_s: float = 10.0) -> None:
        """Stop the thread and write what is left (waiting at most `lock_timeout_s` for the file)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.lock_timeout_s + 5)
        self.flush(lock_timeout_s)
        left = len(self.pending)
        if left or self.dropped:
            print(f"mlinfra serve: {left} request records not written to {TABLE} (the warehouse stayed "
                  f"busy), {self.dropped} dropped (more than {self.pending.maxlen} waiting)",
                  file=sys.stderr, flush=True)
