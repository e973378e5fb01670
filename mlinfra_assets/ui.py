"""`mlinfra ui` (`make ui`): the Dagster UI and the MLflow UI the metadata links to, on 127.0.0.1,
started and stopped together.

Each runs in its own process group inside this session: Ctrl-C or SIGTERM here, or either one
exiting, stops both (SIGTERM, then SIGKILL after `grace_s`). With a tracking server
(MLFLOW_TRACKING_URI=http...) no MLflow UI is started: the links point at that server.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlinfra_assets.resources import UI_URL_VAR, MLflowTracker, is_tracking_server


def commands(tracker: MLflowTracker, port: int, mlflow_port: int, workspace: Path) -> dict[str, list[str]]:
    """The servers to start: name -> command line."""
    bin_dir = Path(sys.executable).parent
    out = {"dagster": [str(bin_dir / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)]}
    if not is_tracking_server(tracker.tracking_uri):  # its store: MLFLOW_BACKEND_STORE_URI
        out["mlflow"] = [str(bin_dir / "mlflow"), "ui", "--host", "127.0.0.1", "--port", str(mlflow_port),
                         "--workers", "1"]
    return out


def mlflow_env(tracker: MLflowTracker) -> dict[str, str]:
    """The MLflow UI's store, given in its environment rather than on its command line: a database
    store's URI carries its password (MLFLOW_TRACKING_PASSWORD), which `ps` would show."""
    return {"MLFLOW_BACKEND_STORE_URI": tracker.store_uri(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def run_ui(tracker: MLflowTracker, port: int, mlflow_port: int, workspace: Path, grace_s: float = 20.0) -> int:
    """Start both, wait until a signal or one of them exits, stop both; returns the exit code."""
    env = dict(os.environ)
    cmds = commands(tracker, port, mlflow_port, workspace)
    if "mlflow" in cmds:
        env[UI_URL_VAR] = f"http://127.0.0.1:{mlflow_port}"
    stopping = []

    def stop(signum: int, frame: object) -> None:  # noqa: ARG001
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    procs = {name: subprocess.Popen(cmd, env={**env, **(mlflow_env(tracker) if name == "mlflow" else {})},
                                    process_group=0) for name, cmd in cmds.items()}
    links = f"Dagster UI http://127.0.0.1:{port}"
    links += f" · MLflow UI http://127.0.0.1:{mlflow_port}" if "mlflow" in procs else f" · MLflow {tracker.tracking_uri}"
    print(f"{links} (Ctrl-C stops both)", flush=True)
    ended = None
    while not stopping and ended is None:
        ended = next((name for name, p in procs.items() if p.poll() is not None), None)
        time.sleep(0.5)
    if ended is not None:
        print(f"{ended} exited ({procs[ended].returncode}): stopping the other", file=sys.stderr, flush=True)
    for p in procs.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs.values():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return 0 if stopping else 1
