"""An in-process run leaves SIGTERM as it found it, also in a process that ignores SIGINT."""

import signal
import subprocess
import sys

from mlinfra_assets import keys
from mlinfra_assets.runner import run_assets
from tests.conftest import small_spec


def test_a_run_started_with_sigint_ignored_still_stops_on_sigterm_afterwards(resources):
    """A background job of a script starts with SIGINT ignored; Dagster maps SIGTERM to SIGINT's
    handler around a run. After the run `kill` must still stop the process and its children."""
    spec = small_spec()
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        result = run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE])
        assert result.success
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        child.terminate()
        assert child.wait(timeout=20) == -signal.SIGTERM  # not ignored by inheritance
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
