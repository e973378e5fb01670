"""The UI as users meet it: `make ui`'s `dagster dev` on 127.0.0.1 with the project's workspace; over GraphQL every
asset group and check loads, and the daily job launched for one partition runs to success."""

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlinfra_assets import keys
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.spec import PROJECT_ROOT
from tests.conftest import small_spec
from tests.faults.security import make_ui_command
from tests.monitoring.conftest import fixture_model, register_champion, write_training_set
from tests.servers import free_port, http_ok, serve

pytestmark = pytest.mark.integration

PARTITION = "2026-01-20"
GROUPS = {"source", "oracle", "raw", "labeling", "synthetic", "training", "edge", "monitoring", "analytics"}
ASSETS = """{ assetNodes { assetKey { path } groupName
  assetChecksOrError { ... on AssetChecks { checks { name } } } } }"""
LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }"""
STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        out = json.loads(response.read())
    assert "errors" not in out, out["errors"]
    return out["data"]


@contextlib.contextmanager
def start_ui(root: Path) -> Iterator[tuple[int, list, subprocess.Popen, int]]:
    """`make ui` as make prints it (port swapped for a free one), over a small demo prepared in
    `root` (what the daily job needs, materialized in-process against the same data folder);
    yields (port, workspace entries, the process, the MLflow UI port)."""
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    spec = small_spec()
    spec_path = root / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    resources = default_resources(data)
    run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE])
    run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], last="2026-01-10")
    write_training_set(resources["warehouse"].path, spec)
    register_champion(resources, spec, fixture_model(spec, resources["warehouse"].path))
    env = {**os.environ, "DAGSTER_HOME": str(home), "MLINFRA_DATA_DIR": str(data),
           "MLINFRA_SPEC": str(spec_path), "DAGSTER_DISABLE_TELEMETRY": "true"}
    for name in ("MLINFRA_WAREHOUSE", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    cmd = make_ui_command()
    port, mlflow_port = free_port(), free_port()
    cmd[cmd.index("-p") + 1] = str(port)
    cmd[cmd.index("--mlflow-port") + 1] = str(mlflow_port)

    def loaded() -> bool:
        entries = graphql(port, LOCATIONS)["workspaceOrError"]["locationEntries"]
        return bool(entries and entries[0]["locationOrLoadError"]) and http_ok(f"http://127.0.0.1:{mlflow_port}/health")()

    with serve(cmd, root / "dagster_dev.log", loaded, 240, env=env, cwd=PROJECT_ROOT) as proc:
        yield port, graphql(port, LOCATIONS)["workspaceOrError"]["locationEntries"], proc, mlflow_port


@pytest.fixture(scope="module")
def server(dagster_dev_server):
    """The session's `make ui` server (tests/conftest.py): port, workspace entries, its folder."""
    port, entries, _, root, _ = dagster_dev_server
    return port, entries, root


def test_every_group_and_check_loads(server):
    port, entries, _ = server
    [entry] = entries
    assert entry["name"] == "mlinfra"
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    nodes = graphql(port, ASSETS)["assetNodes"]
    assert GROUPS <= {n["groupName"] for n in nodes}
    checks = {c["name"] for n in nodes for c in n["assetChecksOrError"].get("checks", [])}
    assert "great_expectations_suite" in checks and "synthetic_quality_gate" in checks
    paths = {"/".join(n["assetKey"]["path"]) for n in nodes}
    assert {"monitoring/predictions", "monitoring/drift_report", "analytics/drift_history"} <= paths


def test_the_daily_job_launched_over_graphql_succeeds(server):
    port, _, root = server
    params = {
        "selector": {"repositoryLocationName": "mlinfra", "repositoryName": "__repository__",
                     "pipelineName": keys.DAILY_JOB},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": PARTITION}]},
    }
    launched = graphql(port, LAUNCH, {"params": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 240
    status = None
    while time.monotonic() < deadline:
        status = graphql(port, STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    assert status == "SUCCESS", (root / "dagster_dev.log").read_text()[-4000:]
