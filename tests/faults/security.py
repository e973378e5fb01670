"""Security sweep helpers, shared by tests/faults/test_security.py and benchmarks/faults.py.

- `find_secret`: every place a run could leave a secret (event log and asset metadata, the
  run's job snapshot, the code location snapshot the UI shows, MLflow params and tags,
  DuckDB tables, files under the data folder and DAGSTER_HOME, captured output).
- `make_ui_command`: the command `make ui` runs (both UIs), as make prints it.
- `bad_annotation_names` / `lf_module_refusals`: the names that must be refused.
"""

import shlex
import subprocess
from pathlib import Path

import dagster as dg
import duckdb

from mlinfra_assets.spec import PROJECT_ROOT

# annotation file names that point outside the inbox (or are not file names at all)
BAD_ANNOTATION_NAMES = [
    "../escape.csv", "../../data/warehouse.duckdb", "/etc/passwd", "sub/../../x.csv",
    "..\\escape.csv", "..", ".", "", "nul\x00.csv",
]
# `labeling_functions` values that are neither a .py file (a path relative to the spec: the
# spec's author chooses the code it runs) nor a dotted module path
BAD_LF_MODULES = ["evil/lfs", "evil-lfs", "lfs.py; import os", ".demo_lfs", "mlinfra_assets..labeling",
                  "mlinfra_assets.labeling.demo_lfs; import os", "mlinfra_assets.labeling.demo_lfs:lfs"]


def _in_duckdb(path: str, secret: str) -> list[str]:
    con = duckdb.connect(path, read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        ).fetchall()
        return [
            f"duckdb {t}" for (t,) in tables
            if con.execute(f"SELECT count(*) FROM {t} AS x WHERE x::VARCHAR LIKE ?", [f"%{secret}%"]).fetchall()[0][0]
        ]
    finally:
        con.close()


def _in_files(root: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [f"file {p}" for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _in_mlflow(tracking_uri: str, secret: str) -> list[str]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = []
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id]):
            for kind, values in (("param", run.data.params), ("tag", run.data.tags)):
                found += [f"mlflow run {run.info.run_id} {kind} {k}" for k, v in values.items()
                          if secret in f"{k}={v}"]
    for model in client.search_registered_models():
        for version in client.search_model_versions(f"name = '{model.name}'"):
            text = f"{version.tags} {version.description} {version.source}"
            if secret in text:
                found.append(f"mlflow model {model.name} v{version.version}")
    return found


def find_secret(
    secret: str, instance: dg.DagsterInstance, defs: dg.Definitions, warehouse: str,
    tracking_uri: str, roots: list[Path], output: str = "",
) -> tuple[list[str], dict[str, int]]:
    """Where `secret` appears; and how many things of each kind were searched."""
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster_shared.serdes import serialize_value

    found: list[str] = []
    searched = {"runs": 0, "events": 0, "materializations": 0}
    for run in instance.get_runs():
        searched["runs"] += 1
        for entry in instance.all_logs(run.run_id):
            searched["events"] += 1
            searched["materializations"] += entry.is_dagster_event and entry.dagster_event_type == (
                dg.DagsterEventType.ASSET_MATERIALIZATION
            )
            if secret in serialize_value(entry):
                found.append(f"event log of run {run.run_id[:8]}: {entry.dagster_event_type}")
        if run.job_snapshot_id and secret in serialize_value(instance.get_job_snapshot(run.job_snapshot_id)):
            found.append(f"job snapshot of run {run.run_id[:8]}")
        if secret in serialize_value(run):
            found.append(f"run record {run.run_id[:8]} (config or tags)")
    if secret in serialize_value(RepositorySnap.from_def(defs.get_repository_def())):
        found.append("code location snapshot (what the Dagster UI shows, e.g. resource config)")
    found += _in_mlflow(tracking_uri, secret)
    found += _in_duckdb(warehouse, secret)
    for root in roots:
        found += _in_files(root, secret)
    if secret in output:
        found.append("captured stdout/stderr")
    return found, searched


def make_ui_command() -> list[str]:
    """The `mlinfra ui` command line of `make ui` (Dagster's and MLflow's UIs), as `make -n` prints it."""
    out = subprocess.run(["make", "-n", "ui"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    [line] = [x for x in out.stdout.splitlines() if "mlinfra ui " in x]
    return shlex.split(line)
