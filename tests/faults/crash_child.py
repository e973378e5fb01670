"""The child process of the crash campaign: materialize assets of a spec (json) in a data folder
with a failpoint set, so that the platform kills it (SIGKILL) at that point.

The children are forked from a forkserver that imported the platform and its heavy libraries
once (PRELOAD), as the code location's multiprocess executor starts its steps: each child is
then a fresh process that does not pay those imports again."""

import multiprocessing
import os
import sys
from pathlib import Path

import dagster as dg

from mlinfra_assets.resources import FAILPOINT, default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.spec import DatasetSpec

# what the writing stages import on their first run (imported at the top of no platform module)
PRELOAD = ["tests.faults.crash_child", "torch", "mlflow", "sklearn", "great_expectations", "sdv", "onnx"]


def materialize(spec_json: str, data_dir: str, assets: list[str], failpoint: str, log: str,
                neighbors: bool = True) -> None:
    """In the child: the run of `assets` (with their multi-asset neighbours), killed at `failpoint`."""
    with open(log, "w") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    os.environ[FAILPOINT] = failpoint
    spec = DatasetSpec.model_validate_json(Path(spec_json).read_text())
    keys = [dg.AssetKey.from_user_string(a) for a in assets]
    selection = dg.AssetSelection.assets(*keys).required_multi_asset_neighbors() if neighbors else keys
    result = run_assets(spec, default_resources(data_dir), selection=selection, raise_on_error=False)
    sys.exit(0 if result.success else 1)


def run_killed(spec_json: str, data_dir: str, assets: list[str], failpoint: str, log: Path,
               neighbors: bool = True, timeout_s: float = 300) -> int:
    """Run `materialize` in a child process; returns its exit code (-9: killed by SIGKILL)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    child = ctx.Process(target=materialize, args=(spec_json, data_dir, assets, failpoint, str(log), neighbors))
    child.start()
    child.join(timeout_s)
    if child.exitcode is None:
        child.kill()
        child.join()
        raise TimeoutError(f"the crash child for {assets} ran past {timeout_s:.0f} s: {log.read_text()[-2000:]}")
    return child.exitcode
