"""Real servers for integration tests: started on 127.0.0.1 in their own process group, killed after."""

import os
import signal
import socket
import subprocess
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


@contextmanager
def serve(
    cmd: list[str], log_path: Path, ready: Callable[[], bool], timeout_s: float,
    env: dict[str, str] | None = None, cwd: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """Start `cmd` in a new process group, wait until `ready()` holds, and kill the group at the end."""
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
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
