"""Concurrency campaign: runs of the retraining job at once (five in the benchmark, three in the suite) under the multiprocess
executor, through a real Dagster instance (the project's dagster.yaml, so the `warehouse` pool
applies), while an analyst loops `mlinfra query` against the same warehouse.

Shared by tests/faults/test_concurrency.py (which asserts it) and benchmarks/faults.py (which
prints its rows). Each run is a `dagster job execute` process of its own, as the daemon's run
launcher would start it, and at most `concurrency.runs.max_concurrent_runs` of dagster.yaml
are in flight, as its run queue would allow (with all five at once the runs still pass, but
Dagster's blocked steps poll for a pool slot with a back-off of up to 15 s, so the campaign
takes several times longer). The runs use the code location's executor (multiprocess with a
forkserver that preloads the code location and the heavy libraries, so a step starts in about
a second instead of re-importing them); the steps still run one at a time across the runs:
that is the pool.
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mlinfra_assets import keys
from mlinfra_assets.resources import LOCK_MESSAGE, default_resources
from mlinfra_assets.runner import run_job
from mlinfra_assets.spec import PROJECT_ROOT, DatasetSpec

RUNS = 5  # the benchmark's campaign (benchmarks/faults.py)
# the suite's: one more than dagster.yaml's max_concurrent_runs (2), so the run queue still holds
# one back while two overlap, and every run overlaps another; the same procedure and assertions as
# the benchmark's five (each run took its turns on the pool: 5 runs ~285 s of a worker, 3 ~170 s)
SUITE_RUNS = 3
ROWS = 6_000
BIN = Path(sys.executable).parent
# what an analyst asks while the runs replace these tables
QUERIES = [
    "SELECT count(*) AS n FROM labeling.weak_labels",
    "SELECT decision, count(*) AS n FROM training.evaluation GROUP BY ALL",
    "SELECT _source, count(*) AS n FROM training.training_set GROUP BY ALL ORDER BY 1",
    "SELECT count(*) AS n, max(_partition) AS last_day FROM raw.transactions",
]
# tables the retraining job must leave whole: rows lost = rows before - rows after
STABLE = ["raw.transactions", "labeling.label_matrix", "labeling.weak_labels", "labeling.annotations"]
LOCK_ERRORS = re.compile(
    rf"{LOCK_MESSAGE}|locked by another process|database is locked|WarehouseBusy|Conflicting lock", re.I
)
BUSY = "busy: warehouse "  # the clear wait message of `mlinfra query` (exit code 3)
# an analyst reads the answer before asking again; back to back, the loop's `mlinfra query`
# processes (about 0.75 s of CPU each) took a whole core from the runs on a 2-core machine; every
# 2 s, ~100 queries in a campaign, a third of a core
ANALYST_PAUSE_S = 4.0
def small_demo_spec(rows: int = ROWS) -> DatasetSpec:
    """The demo at test size with short training and fine-tuning and the small [64, 32] net
    (the job's shape is unchanged): these campaigns are about files, locks and secrets, not
    about what the model learns, and the demo's [256, 256] would only make them slower."""
    from tests.conftest import small_spec

    spec = small_spec(rows=rows)
    spec.synthetic.utility = False
    spec.training.epochs = 2
    spec.training.hidden, spec.training.mixup, spec.training.batch_size = [64, 32], 0.0, 1024
    spec.edge.finetune_mixup = 0.0
    spec.edge.finetune_rows = 2_000
    spec.edge.finetune_epochs = 1
    return spec


@dataclass
class Demo:
    root: Path
    spec: DatasetSpec
    spec_file: Path
    home: Path  # DAGSTER_HOME with the project's dagster.yaml
    data: Path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLINFRA_WAREHOUSE")}
        return {
            **env, "DAGSTER_HOME": str(self.home), "MLINFRA_SPEC": str(self.spec_file),
            "MLINFRA_DATA_DIR": str(self.data), "PYTHONPATH": str(PROJECT_ROOT),
            "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GX_ANALYTICS_ENABLED": "false",
            "DAGSTER_DISABLE_TELEMETRY": "true",
        }


def build_demo(root: Path, spec: DatasetSpec | None = None) -> Demo:
    """A small demo warehouse (the full job once, in-process) and a DAGSTER_HOME for the runs."""
    spec = spec or small_demo_spec()
    root.mkdir(parents=True, exist_ok=True)
    spec_file = root / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    home = root / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    # a deployment's instance exists before its runs: five processes creating its sqlite
    # storage at once race on the schema version (UNIQUE constraint failed: alembic_version),
    # and two first claims of a pool not yet in the storage both get a slot
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home))
    instance.event_log_storage.initialize_concurrency_limit_to_default(keys.WAREHOUSE_POOL)
    instance.dispose()
    data = root / "data"
    result = run_job(spec, default_resources(data), keys.FULL_JOB)
    if not result.success:
        raise RuntimeError(f"the demo under {root} did not build: {result.get_failed_step_keys()}")
    return Demo(root, spec, spec_file, home, data)


@dataclass
class QueryCall:
    sql: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def kind(self) -> str:
        """rows | busy | traceback | other"""
        text = self.stdout + self.stderr
        if "Traceback" in text:
            return "traceback"
        lines = [x for x in self.stdout.splitlines() if x.strip()]
        if self.returncode == 0 and len(lines) >= 2 and not self.stderr.strip():
            return "rows"  # a header and at least one row
        if self.returncode == 3 and self.stderr.startswith(BUSY) and "try again" in self.stderr:
            return "busy"
        return "other"


@dataclass
class Outcome:
    runs: list[dict] = field(default_factory=list)  # run_id, status, start, end, returncode
    lock_errors: list[str] = field(default_factory=list)
    calls: list[QueryCall] = field(default_factory=list)
    returncodes: list[int] = field(default_factory=list)  # of the `dagster job execute` processes
    # per run: its longest overlap with another run (the last one may run alone, as behind
    # the daemon's queue: the others have finished by the time it starts)
    overlap_s: list[float] = field(default_factory=list)
    at_once: int = 0  # runs allowed in flight at once (max_concurrent_runs of dagster.yaml)
    max_runs_at_once: int = 0  # runs seen executing at the same instant
    max_steps_at_once: int = 0  # steps of any run executing at the same instant (pool: 1)
    versions_registered: int = 0
    rows_before: dict[str, int] = field(default_factory=dict)
    rows_after: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows_lost(self) -> int:
        return sum(max(0, n - self.rows_after.get(t, 0)) for t, n in self.rows_before.items())

    def count(self, kind: str) -> int:
        return sum(c.kind == kind for c in self.calls)


def _counts(demo: Demo) -> dict[str, int]:
    wh = default_resources(demo.data)["warehouse"]
    return {t: wh.row_count(t) for t in STABLE}


def analyst_loop(demo: Demo, stop: threading.Event, calls: list[QueryCall]) -> None:
    """`mlinfra query` in a subprocess, one query after the other with `ANALYST_PAUSE_S` between
    them, until `stop` is set."""
    i = 0
    while not stop.is_set():
        sql = QUERIES[i % len(QUERIES)]
        i += 1
        started = time.monotonic()
        out = subprocess.run(
            [str(BIN / "mlinfra"), "query", sql], env=demo.env, cwd=demo.root,
            capture_output=True, text=True, timeout=120,
        )
        calls.append(QueryCall(sql, out.returncode, out.stdout, out.stderr, time.monotonic() - started))
        stop.wait(ANALYST_PAUSE_S)


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals covering one instant (one ending as another starts: not both)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    level = most = 0
    for _, delta in edges:
        level += delta
        most = max(most, level)
    return most


def max_concurrent_runs(home: Path) -> int:
    """`concurrency.runs.max_concurrent_runs` of the instance's dagster.yaml."""
    config = yaml.safe_load((home / "dagster.yaml").read_text()) or {}
    return int(config["concurrency"]["runs"]["max_concurrent_runs"])


def _versions(demo: Demo) -> int:
    """Trained versions of the demo's model (the edge variants registered beside them not counted)."""
    from mlinfra_assets.training import registry

    versions = registry.list_versions(default_resources(demo.data)["mlflow"], demo.spec.name)
    return sum(not v["edge_variant"] for v in versions)


# about 7 min here; CI's machine ran the suite 1.4x slower and this campaign more than 1.8x
# (past 720 s twice): the runs take turns on the warehouse pool, so their time adds up
TIMEOUT_S = 1500


def campaign(demo: Demo, runs: int = RUNS, timeout_s: float = TIMEOUT_S) -> Outcome:
    """Start `runs` retraining runs at once with an analyst loop beside them; gather what happened."""
    import dagster as dg

    out = Outcome(rows_before=_counts(demo), at_once=max_concurrent_runs(demo.home))
    versions_before = _versions(demo)
    stop, calls = threading.Event(), out.calls
    analyst = threading.Thread(target=analyst_loop, args=(demo, stop, calls), daemon=True)
    at_once = max_concurrent_runs(demo.home)
    cmd = [str(BIN / "dagster"), "job", "execute", "-m", "mlinfra_assets.definitions",
           "-j", keys.RETRAIN_JOB]
    started = time.monotonic()
    procs: list[subprocess.Popen] = []
    analyst.start()
    try:
        while len(procs) < runs or any(p.poll() is None for p in procs):
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{runs} retraining runs did not finish within {timeout_s:.0f} s")
            if len(procs) < runs and sum(p.poll() is None for p in procs) < at_once:
                with open(demo.root / f"run_{len(procs)}.log", "w") as log:
                    procs.append(subprocess.Popen(cmd, env=demo.env, cwd=PROJECT_ROOT, stdout=log,
                                                  stderr=subprocess.STDOUT, start_new_session=True))
                continue
            time.sleep(0.5)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
        stop.set()
        analyst.join(timeout=150)
    out.seconds = time.monotonic() - started
    out.returncodes = [p.returncode for p in procs]
    for i in range(len(procs)):
        text = (demo.root / f"run_{i}.log").read_text(errors="replace")
        out.lock_errors += [f"run_{i}.log: {line[:300]}" for line in text.splitlines() if LOCK_ERRORS.search(line)]
    instance = dg.DagsterInstance.from_config(str(demo.home))
    try:
        records = instance.get_run_records(filters=dg.RunsFilter(job_name=keys.RETRAIN_JOB))
        intervals, steps = [], []
        for record in records:
            run = record.dagster_run
            out.runs.append({"run_id": run.run_id, "status": run.status.value,
                             "start": record.start_time, "end": record.end_time})
            intervals.append((record.start_time or 0, record.end_time or 0))
            for entry in instance.all_logs(run.run_id):
                text = entry.message or ""
                if entry.dagster_event and entry.dagster_event.event_specific_data is not None:
                    text += " " + str(entry.dagster_event.event_specific_data)
                if LOCK_ERRORS.search(text):
                    out.lock_errors.append(f"{run.run_id[:8]} event log: {text[:300]}")
            steps += [(s.start_time, s.end_time) for s in instance.get_run_step_stats(run.run_id)
                      if s.start_time and s.end_time]
        for k, (s1, e1) in enumerate(intervals):  # seconds each run shared with another
            out.overlap_s.append(max([0.0] + [min(e1, e2) - max(s1, s2)
                                              for j, (s2, e2) in enumerate(intervals) if j != k]))
        out.max_steps_at_once = _most_at_once(steps)
        out.max_runs_at_once = _most_at_once(intervals)
    finally:
        instance.dispose()
    out.versions_registered = _versions(demo) - versions_before
    out.rows_after = _counts(demo)
    return out
