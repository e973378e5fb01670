"""`mlinfra ui` (make ui): which servers it starts for which tracking store, and where the
metadata's MLflow links point; tests/test_webserver.py runs the real pair."""

from pathlib import Path

from mlinfra_assets.resources import UI_URL_VAR, MLflowTracker, default_resources, ui_url
from mlinfra_assets.ui import commands, mlflow_env


def test_a_local_store_gets_an_mlflow_ui_on_loopback_and_the_links_follow_its_port(tmp_path, monkeypatch):
    tracker = MLflowTracker(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path))
    cmds = commands(tracker, 3001, 5001, Path("workspace.yaml"))
    assert set(cmds) == {"dagster", "mlflow"}
    assert cmds["dagster"][cmds["dagster"].index("-h") + 1] == "127.0.0.1"
    assert cmds["dagster"][cmds["dagster"].index("-p") + 1] == "3001"
    mlflow = cmds["mlflow"]
    assert mlflow[1] == "ui" and mlflow[mlflow.index("--host") + 1] == "127.0.0.1"
    assert mlflow[mlflow.index("--port") + 1] == "5001"
    assert mlflow_env(tracker)["MLFLOW_BACKEND_STORE_URI"] == tracker.tracking_uri  # not on the command line
    assert ui_url(tracker.tracking_uri, {}) == "http://127.0.0.1:5000"
    monkeypatch.setenv(UI_URL_VAR, "http://127.0.0.1:5001")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLINFRA_DATA_DIR", str(tmp_path))
    link = default_resources()["mlflow"].run_link("1", "abc")
    assert link == "http://127.0.0.1:5001/#/experiments/1/runs/abc"


def test_a_database_password_stays_off_the_mlflow_ui_command_line(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "sentinelPw42")
    tracker = MLflowTracker(tracking_uri="postgresql://mlinfra@db.internal/mlflow", artifact_root="/tmp/x")
    assert "sentinelPw42" not in " ".join(commands(tracker, 3000, 5000, Path("workspace.yaml"))["mlflow"])
    assert "sentinelPw42" in mlflow_env(tracker)["MLFLOW_BACKEND_STORE_URI"]


def test_a_tracking_server_is_its_own_ui():
    tracker = MLflowTracker(tracking_uri="http://mlflow.internal:5000/", artifact_root="/tmp/x")
    assert set(commands(tracker, 3000, 5000, Path("workspace.yaml"))) == {"dagster"}
    assert ui_url(tracker.tracking_uri, {UI_URL_VAR: "http://127.0.0.1:5001"}) == "http://mlflow.internal:5000"
