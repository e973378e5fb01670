"""The Spark engine against a standalone cluster, run in a process of its own (a test worker may
hold a local Spark session already): the demo's ingest and label matrix with `spark.master` the
cluster, one worker killed (SIGKILL, with its executor) while it runs tasks, then the last day
ingested again. Prints one JSON line of what happened for tests/warehouse/test_spark_cluster.py.

    python -m tests.warehouse.cluster_child MASTER_URL VICTIM_PGID VICTIM_WORKER_UI DATA_DIR ROWS
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

import duckdb


def executors(ui: str, app: str) -> list[dict]:
    with urllib.request.urlopen(f"{ui}/api/v1/applications/{app}/allexecutors", timeout=5) as response:
        return [e for e in json.load(response) if e["id"] != "driver"]


def kill_when_busy(ui: str, spark, victim_pgid: int, victim_executor: list[str], out: dict) -> None:  # noqa: ANN001
    """Kill the victim worker's process group once its executor runs a task (polled over the
    driver's REST API); records the executor and its tasks at that moment."""
    app = spark.sparkContext.applicationId
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not out.get("killed"):
        try:
            for e in executors(ui, app):
                if e["id"] in victim_executor and e["activeTasks"] > 0:
                    os.killpg(victim_pgid, signal.SIGKILL)
                    out.update(killed=True, killed_executor=e["id"], active_tasks_at_kill=e["activeTasks"])
                    return
        except OSError:
            pass
        time.sleep(0.05)


def main() -> None:
    from mlinfra_assets import keys
    from mlinfra_assets.resources import default_resources
    from mlinfra_assets.runner import run_assets
    from mlinfra_assets.warehouse.partitions import partitions_for
    from tests.conftest import small_spec
    from tests.servers import free_port

    master, victim_pgid, victim_ui = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data_dir, rows = Path(sys.argv[4]), int(sys.argv[5])
    ui_port = free_port()
    ui = f"http://127.0.0.1:{ui_port}"
    spec = small_spec(rows, warehouse={"engine": "spark"}, spark={"master": master, "conf": {
        # the cluster's executors reach the driver on loopback (all on this machine); its UI's
        # REST API tells which executor ran what
        "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "true", "spark.ui.port": str(ui_port), "spark.ui.showConsoleProgress": "false",
        "spark.executor.memory": "512m", "spark.executor.cores": "1"}})
    resources = default_resources(data_dir)
    run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE])
    from pyspark.sql import SparkSession

    # the session the platform's lazy resource will get (getOrCreate), started here to learn
    # which executor the victim worker hosts before any ingest runs
    from mlinfra_assets.resources import spark_config

    builder = SparkSession.builder
    for key, value in spark_config(spec).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.range(0, 1000, numPartitions=4).count()  # both executors registered and used
    app = spark.sparkContext.applicationId
    out: dict = {"app": app}
    deadline = time.monotonic() + 120
    while len(executors(ui, app)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    out["executors_before"] = [(e["id"], e["totalTasks"]) for e in executors(ui, app)]
    with urllib.request.urlopen(f"{victim_ui}/json/", timeout=5) as response:  # what the victim worker hosts
        victim = [str(e["id"]) for e in json.load(response)["executors"] if e["appid"] == app]
    out["victim_executors"] = victim
    killer = threading.Thread(target=kill_when_busy, args=(ui, spark, victim_pgid, victim, out), daemon=True)
    killer.start()
    started = time.monotonic()
    whole = run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], raise_on_error=False)
    out["ingest_ok"], out["ingest_s"] = whole.success, round(time.monotonic() - started, 1)
    out["killed"] = bool(out.get("killed"))
    days = partitions_for(spec).get_partition_keys()
    again = run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], first=days[-1],
                       last=days[-1], raise_on_error=False)
    out["rerun_ok"] = again.success
    out["matrix_ok"] = run_assets(spec, resources, selection=[keys.LABEL_MATRIX], raise_on_error=False).success
    out["executors_after"] = [(e["id"], e["totalTasks"], e["isActive"]) for e in executors(ui, app)]
    with duckdb.connect(resources["warehouse"].path, read_only=True) as con:
        def one(sql: str) -> int:
            return int(con.execute(sql).fetchall()[0][0])

        out["source_rows"] = one("SELECT count(*) FROM source.transactions")
        out["raw_rows"] = one("SELECT count(*) FROM raw.transactions")
        out["raw_distinct"] = one("SELECT count(*) FROM (SELECT DISTINCT txn_id, _partition FROM raw.transactions)")
        out["quarantined"] = one("SELECT count(*) FROM raw.quarantine")
        out["matrix_rows"] = one("SELECT count(*) FROM labeling.label_matrix")
    spark.stop()
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
