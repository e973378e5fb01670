"""What `mlinfra run` shows: a line per step (name, state, seconds) from the run's own events,
live on a terminal, plain elsewhere; everything else in a log file whose path is printed; a
failed step named with its error and the log, exit status 1; `--verbose` shows the stream."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest

from mlinfra_assets.progress import RunProgress, failure_lines, output_to, run_log_path


def _tiny_job() -> dg.JobDefinition:
    @dg.asset
    def sizes() -> int:
        return 1

    @dg.asset
    def prices(sizes: int) -> int:
        raise ValueError("column 'price' is missing\nit holds: size, colour\nrename it\nor map it\nin the spec")

    @dg.asset
    def totals(prices: int) -> int:
        return prices

    @dg.asset
    def colours() -> int:
        return 2

    defs = dg.Definitions(assets=[sizes, prices, totals, colours], jobs=[dg.define_asset_job("tiny")])
    return defs.resolve_job_def("tiny")


def _watched_run(progress: RunProgress) -> dg.ExecuteInProcessResult:
    """The tiny job run as runner._execute runs a job: the watcher sees its steps, then its events."""
    job, instance, run_id = _tiny_job(), dg.DagsterInstance.ephemeral(), str(uuid.uuid4())
    progress.planned([node.name for node in job.graph.nodes])
    instance.add_event_listener(run_id, progress)
    return job.execute_in_process(instance=instance, run_id=run_id, raise_on_error=False)


def test_plain_output_is_one_line_per_finished_step_and_the_failure_is_named(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = RunProgress(out)
    result = _watched_run(progress)
    lines = out.getvalue().splitlines()
    assert not result.success and progress.live is False
    assert len(lines) == 3, lines  # sizes, colours, prices; totals never starts
    by_step = {line.split()[1]: line for line in lines}
    assert set(by_step) == {"sizes", "colours", "prices"}
    assert re.match(r"^  ok sizes +done +\d+\.\d s  \[\d/4\]$", by_step["sizes"]), by_step["sizes"]
    assert re.match(r"^  !! prices +FAILED +\d+\.\d s  \[3/4\]$", by_step["prices"]), by_step["prices"]
    assert progress.not_run() == ["totals"]
    log = run_log_path(tmp_path, result.run_id)
    failure = failure_lines(result, log)
    # the user's error (not Dagster's wrapper), cut to 3 lines, then where the full log is
    assert failure == ["step prices failed:", "  ValueError: column 'price' is missing", "  it holds: size, colour",
                       "  rename it", "  ...", f"full log: {log}"]
    assert log.parent == tmp_path / "logs" and log.name.endswith(f"-{result.run_id[:8]}.log")


def test_live_display_shows_each_step_state_and_the_overall_bar() -> None:
    from rich.console import Console

    progress = RunProgress(io.StringIO(), live=True)
    _watched_run(progress)
    assert progress.out.getvalue() == ""  # live mode prints nothing itself: Live redraws it
    screen = io.StringIO()
    Console(file=screen, width=80, color_system=None).print(progress)
    text = screen.getvalue()
    assert re.search(r"✓ sizes +done +\d+\.\d s", text), text
    assert re.search(r"✗ prices +FAILED", text), text
    assert "totals" not in text and "3/4 steps" in text, text


def test_output_to_sends_python_fd_and_child_output_to_the_log(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    log = tmp_path / "logs" / "run.log"
    with output_to(log) as terminal:
        print("from print")
        print("from stderr", file=sys.stderr)
        os.write(1, b"from fd 1\n")
        os.write(2, b"from fd 2\n")
        subprocess.run(["sh", "-c", "echo from a child; echo child err >&2"], check=True)
        terminal.write("for the user\n")
    print("after")
    captured = capfd.readouterr()
    text = log.read_text()
    for expected in ("from print", "from stderr", "from fd 1", "from fd 2", "from a child", "child err"):
        assert expected in text and expected not in captured.out + captured.err, expected
    assert captured.out == "for the user\nafter\n", captured


# -- the command, as a user runs it ------------------------------------------------------------

from tests.own_data.test_matrix import mlinfra  # noqa: E402

MAX_LINES = 60  # the whole terminal output of a run (the budget for `make run`)


def _log_of(stdout: str) -> Path:
    found = re.search(r"Dagster's events and the libraries' output: (\S+\.log)", stdout)
    assert found, stdout[:2000]
    return Path(found.group(1))


@pytest.mark.integration
@pytest.mark.parametrize("case_run", ["wine"], indirect=True)
def test_run_prints_few_lines_and_writes_the_event_stream_to_its_log(case_run: tuple) -> None:
    """The wine run of tests/own_data/test_matrix.py (`case_run`, tests/conftest.py): `mlinfra
    init`, the user's LF module, `mlinfra run` as a user types it."""
    done = case_run[2]
    lines = (done.stdout + done.stderr).splitlines()
    assert len(lines) < MAX_LINES, "\n".join(lines)
    assert " - DEBUG - " not in done.stdout + done.stderr and "Warning" not in done.stdout + done.stderr
    steps = [line for line in done.stdout.splitlines() if line.startswith("  ok ")]
    log = _log_of(done.stdout)
    text = log.read_text()
    # every step's start and success is in the log, each step once on the terminal, all done
    started = set(re.findall(r" - (\S+) - STEP_START - ", text))
    assert len(started) >= 15 and started == set(re.findall(r" - (\S+) - STEP_SUCCESS - ", text))
    assert sorted(s.split()[1] for s in steps) == sorted(k.replace("__", "/") for k in started)
    assert all(re.search(r" done(, \d+ checks? failed)? +\d+\.\d s  \[\d+/\d+\]$", s) for s in steps), steps
    assert text.count(" - DEBUG - ") > 50 and " - INFO - " in text
    assert "succeeded" in done.stdout and done.stderr == ""
    # the summary is last, the decisions at its end
    tail = done.stdout[done.stdout.index("succeeded"):]
    assert tail.index("== weak labels") < tail.index("== MLflow") < tail.index("== decisions of this run")
    assert "gate:" in tail[tail.index("== decisions of this run"):]


LOOKUP_LFS = '''import numpy as np
from mlinfra_assets.labeling.forms import sql_labeling_function as sql, vectorized_labeling_function

big = sql("big", "CASE WHEN mean_area >= 750 THEN 0 END")
small = sql("small", "CASE WHEN mean_area <= 450 THEN 1 END")
REVIEWED = {i: 1 for i in range(1000, 1200)}  # the rows a colleague reviewed: not all of them


@vectorized_labeling_function()
def reviewed(df):
    return np.array([REVIEWED[int(i)] for i in df["row_id"]])
'''


@pytest.mark.integration
def test_failing_run_names_the_step_its_error_and_the_log(tmp_path: Path) -> None:
    """An LF that passes the spec check (its first 200 rows) and raises on row 1200 at run time."""
    from tests.any_table import sklearn_frame

    sklearn_frame("breast_cancer").to_csv(tmp_path / "cells.csv", index=False)
    mlinfra("init", str(tmp_path / "cells.csv"), "--target", "target", "--id", "id", "--out", str(tmp_path / "cells"))
    (tmp_path / "cells" / "lfs.py").write_text(LOOKUP_LFS)
    spec = str(tmp_path / "cells" / "spec.yaml")

    done = mlinfra("run", "--spec", spec, check=False)
    assert done.returncode == 1, (done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stdout + done.stderr
    assert len((done.stdout + done.stderr).splitlines()) < MAX_LINES
    log = _log_of(done.stdout)
    assert re.search(r"^  !! labeling/label_matrix +FAILED", done.stdout, re.M), done.stdout
    assert re.search(r"^\d+ of \d+ steps not run \(downstream of the failure\)$", done.stdout, re.M)
    assert done.stderr.splitlines()[-3:] == ["step labeling/label_matrix failed:", "  KeyError: 1200",
                                             f"full log: {log}"], done.stderr
    assert "STEP_FAILURE" in log.read_text() and "KeyError" in log.read_text()

    verbose = mlinfra("run", "--spec", spec, "--verbose", check=False)
    assert verbose.returncode == 1
    assert " - DEBUG - " in verbose.stderr and "STEP_FAILURE" in verbose.stderr
    assert verbose.stderr.splitlines()[-2:] == ["step labeling/label_matrix failed:", "  KeyError: 1200"]
    assert "Dagster's events and the libraries' output" not in verbose.stdout
