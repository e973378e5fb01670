"""Real servers for integration tests: started on 127.0.0.1 in their own process group, killed after.

`serve` also checks, once the server answers, that nothing in its process group listens on
an address other than loopback (a server that ignores its host flag binds 0.0.0.0).
"""

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness probe: `url` answers 200."""
    def probe() -> bool:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    return probe


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    return socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))


def listening(session: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket listened on by a process of session `session` (Linux /proc)."""
    inodes = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3]) != session:
                continue
            for fd in (proc / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except (OSError, ValueError, IndexError):
            continue  # gone, or not ours to read
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addr, port = fields[1].split(":")
                found.append((_address(addr), int(port, 16)))
    return sorted(set(found))


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


def exposed(session: int) -> list[tuple[str, int]]:
    """The sockets of `session` that listen beyond loopback."""
    return [(a, p) for a, p in listening(session) if not is_loopback(a)]


@contextmanager
def serve(
    cmd: list[str], log_path: Path, ready: Callable[[], bool], timeout_s: float,
    env: dict[str, str] | None = None, cwd: Path | None = None, loopback_only: bool = True,
) -> Iterator[subprocess.Popen]:
    """Start `cmd` in a new process group, wait until `ready()` holds, and kill the group at the end.

    With `loopback_only` (the default) a server listening beyond 127.0.0.1 / ::1 is refused."""
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if ready():
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[0]} did not start within {timeout_s:.0f} s: "
                                   f"{log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        if loopback_only and exposed(proc.pid):
            raise RuntimeError(
                f"{Path(cmd[0]).name} listens on {exposed(proc.pid)}, not only on loopback: "
                "give it its bind-address option (127.0.0.1)"
            )
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@contextmanager
def mlflow_server(folder: Path, timeout_s: float = 120, backend_store_uri: str | None = None) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 with its store and artifacts in `folder` (or over an
    existing store, `backend_store_uri`); yields its URI.

    One worker and no job runner: a tracking server for one test needs neither, and MLflow's
    defaults (4 uvicorn workers and a job runner of 4 more processes, each importing mlflow)
    took 45 s to answer on this 2-core machine against 19 s."""
    from mlinfra_assets import mlflow_store

    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    store = backend_store_uri or f"sqlite:///{folder / 'server.db'}"
    mlflow_store.seed(store)  # a new sqlite store: the migrated empty one, as the platform's own stores
    cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--workers", "1",
           "--backend-store-uri", store,
           "--default-artifact-root", str(folder / "server-artifacts"),
           "--host", "127.0.0.1", "--port", str(port)]
    uri = f"http://127.0.0.1:{port}"
    with serve(cmd, folder / "mlflow.log", http_ok(f"{uri}/health"), timeout_s, env=env):
        yield uri


LABEL_STUDIO_VENV = Path(
    os.environ.get("MLINFRA_LABELSTUDIO_VENV", Path.home() / ".cache/mlinfra/labelstudio-venv")
)


@contextmanager
def label_studio(data_dir: Path, token: str, timeout_s: float = 300) -> Iterator[str]:
    """A real Label Studio (make labelstudio's virtualenv) on 127.0.0.1 accepting `Token <token>`;
    yields its URL. Skips the test when the virtualenv is missing."""
    import pytest

    exe = LABEL_STUDIO_VENV / "bin" / "label-studio"
    if not exe.exists():
        pytest.skip(f"no Label Studio at {exe}: run `make labelstudio` (make test does)")
    port = free_port()
    # an empty database `make labelstudio` migrated: copied, the server skips ~40 s of migrations
    template = LABEL_STUDIO_VENV / "template" / "label_studio.sqlite3"
    if template.exists():
        (data_dir / "ls").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, data_dir / "ls" / template.name)
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir / "ls"),
           "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
    # --internal-host is the bind address (default 0.0.0.0); --host only names the URL in links
    cmd = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
           "--username", "ana@mlinfra.local", "--password", "not-a-secret-1", "--user-token", token]
    url = f"http://127.0.0.1:{port}"
    with serve(cmd, data_dir / "label_studio.log", http_ok(f"{url}/health"), timeout_s, env=env):
        yield url


@contextmanager
def spark_cluster(folder: Path, workers: int = 2, timeout_s: float = 180) -> Iterator[dict]:
    """A Spark standalone cluster from the installed pyspark: a master and `workers` workers
    (1 core, 1 GiB each), each in its own process group on 127.0.0.1, stopped at the end. Yields
    {"url": the master's spark:// URL, "ui": its web UI, "workers": [(process group, web UI)]}."""
    from contextlib import ExitStack

    import pyspark

    home = Path(pyspark.__file__).parent
    folder.mkdir(parents=True, exist_ok=True)
    spark_class = str(home / "bin" / "spark-class")
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOG_DIR": str(folder / "logs"), "SPARK_NO_DAEMONIZE": "1"}
    port, ui_port = free_port(), free_port()
    url, ui = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"

    def alive() -> int:
        import json

        with urllib.request.urlopen(f"{ui}/json/", timeout=2) as response:
            return sum(w["state"] == "ALIVE" for w in json.load(response)["workers"])

    with ExitStack() as stack:
        stack.enter_context(serve(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(ui_port)],
            folder / "master.log", http_ok(f"{ui}/json/"), timeout_s, env=env))
        started = []
        for i in range(workers):
            worker_ui = free_port()
            proc = stack.enter_context(serve(
                [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                 "--cores", "1", "--memory", "1g", "--webui-port", str(worker_ui),
                 "--work-dir", str(folder / f"worker{i}"), url],
                folder / f"worker{i}.log", lambda n=i + 1: alive() >= n, timeout_s, env=env))
            started.append((proc.pid, f"http://127.0.0.1:{worker_ui}"))
        yield {"url": url, "ui": ui, "workers": started}
