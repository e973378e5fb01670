"""The served-requests log: records wait in memory while another process holds the warehouse,
are written once it is free (nothing lost, nothing twice), and a full buffer drops the oldest,
counted."""

import subprocess
import sys
import time
from datetime import datetime

import duckdb

from mlinfra_assets.serving.request_log import TABLE, RequestLog, ServedRequest


def request(i: int) -> ServedRequest:
    return ServedRequest(datetime(2026, 12, 6, 12, 0, i % 60), "m", "champion", "1", i, 1.5, 200, None, None)


def test_a_busy_warehouse_keeps_the_records_until_it_is_free(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    log = RequestLog(str(path), lock_timeout_s=0.3)
    for i in range(3):
        log.record(request(i))
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
                               "print('held', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert log.flush() == 0 and len(log.pending) == 3  # busy: kept, in order
        log.record(request(3))
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.2)
    assert log.flush() == 4 and len(log.pending) == 0 and log.written == 4
    con = duckdb.connect(str(path), read_only=True)
    rows = [r[0] for r in con.execute(f"SELECT rows FROM {TABLE} ORDER BY served_at").fetchall()]
    con.close()
    assert rows == [0, 1, 2, 3]


def test_a_full_buffer_drops_the_oldest_and_counts_them(tmp_path):
    log = RequestLog(str(tmp_path / "w.duckdb"), max_buffered=5)
    for i in range(8):
        log.record(request(i))
    assert log.dropped == 3 and [r.rows for r in log.pending] == [3, 4, 5, 6, 7]
    assert log.flush() == 5
