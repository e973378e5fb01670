"""The Spark engine on a real standalone cluster (a master and two workers from the installed
pyspark, on 127.0.0.1): the demo's ingest and label matrix run with `spark.master` the cluster,
tasks run on both workers (Spark's REST API), one worker is killed while its executor runs
tasks and the job still succeeds on the other, nothing lost or duplicated; a day ingested
again replaces itself."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from mlinfra_assets.spec import PROJECT_ROOT
from tests.servers import spark_cluster

pytestmark = pytest.mark.integration
ROWS = 20_000


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]'")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("no Java runtime: Spark needs Java 17+ (make test installs one where it can)")
    folder = tmp_path_factory.mktemp("cluster")
    with spark_cluster(folder / "spark", workers=2) as cluster:
        (victim_pgid, victim_ui) = cluster["workers"][1]
        env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
        done = subprocess.run(
            [sys.executable, "-m", "tests.warehouse.cluster_child", cluster["url"], str(victim_pgid), victim_ui,
             str(folder / "data"), str(ROWS)],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=840)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (done.stdout[-3000:], done.stderr[-5000:])
    out = json.loads(lines[-1][len("RESULT "):])
    print("cluster run:", out)  # shown with -s or on a failure
    return out


def test_tasks_run_on_both_workers_and_a_killed_one_is_survived(cluster_run):
    out = cluster_run
    assert out["killed"] and out["active_tasks_at_kill"] > 0, out  # killed mid-task
    assert len(out["victim_executors"]) == 1 and out["killed_executor"] in out["victim_executors"]
    assert out["ingest_ok"] and out["rerun_ok"] and out["matrix_ok"], out
    ran = {e: tasks for e, tasks, _ in out["executors_after"]}
    assert len(ran) >= 2 and all(tasks > 0 for tasks in ran.values()), out  # both workers ran tasks
    alive = [e for e, _, active in out["executors_after"] if active]
    assert out["killed_executor"] not in alive and alive, out  # the survivor finished the work


def test_every_source_row_lands_once_after_the_kill_and_the_rerun(cluster_run):
    out = cluster_run
    assert out["raw_rows"] == out["raw_distinct"]  # nothing duplicated by the retried tasks or the re-run
    assert out["raw_rows"] + out["quarantined"] == out["source_rows"] == ROWS, out  # nothing lost
    assert out["matrix_rows"] == out["raw_rows"]
