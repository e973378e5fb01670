"""What `mlinfra run` shows while the graph runs: one line per step (name, state, seconds) and
an overall bar, live on a terminal, one plain line per finished step elsewhere (CI, pipes).
Everything else the run writes (Dagster's event stream, library warnings and progress bars)
goes to a log file whose path is printed; a failed step is named with its error and that path.

The lines come from the run's own events: `RunProgress` is an event listener of the Dagster
instance (`DagsterInstance.add_event_listener`), called as each event is stored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

DONE, FAILED, RUNNING, SKIPPED = "done", "FAILED", "running", "skipped"
ERROR_LINES = 3


def step_name(step_key: str) -> str:
    """A step key as the asset it materializes: `labeling__weak_labels` -> `labeling/weak_labels`."""
    return step_key.replace("__", "/")


def run_log_path(data_dir: Path, run_id: str) -> Path:
    """`<data dir>/logs/run-<UTC time>-<first 8 characters of the run id>.log`."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return Path(data_dir) / "logs" / f"run-{stamp}-{run_id[:8]}.log"


@dataclass
class Step:
    key: str
    started: float
    ended: float | None = None
    state: str = RUNNING
    checks_failed: int = 0

    def seconds(self, now: float) -> float:
        return (self.ended or now) - self.started

    def state_text(self) -> str:
        if self.checks_failed and self.state == DONE:
            return f"done, {self.checks_failed} check{'s' if self.checks_failed > 1 else ''} failed"
        return self.state


@dataclass
class Failure:
    step: str
    error: list[str]  # the innermost error's message, at most ERROR_LINES lines


def error_lines(error: Any) -> list[str]:  # noqa: ANN401 - dagster's SerializableErrorInfo
    """The message of the error that caused a step failure (the innermost cause: Dagster wraps
    the user's exception in its own), cut to ERROR_LINES lines."""
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return ["(no error message)"]
    lines = [line.rstrip() for line in error.message.strip().splitlines() if line.strip()]
    return lines[:ERROR_LINES] + (["..."] if len(lines) > ERROR_LINES else [])


def failure_lines(result: Any, log: Path | None) -> list[str]:  # noqa: ANN401 - ExecuteInProcessResult
    """What failed in a run, for the terminal: each failed step with its error's message (or the
    run's own error when no step failed: resources, the executor), then where the full log is."""
    out: list[str] = []
    for event in result.all_events:
        if event.is_step_failure:
            out.append(f"step {step_name(event.step_key)} failed:")
            out += [f"  {line}" for line in error_lines(event.event_specific_data.error)]
    if not out:
        for event in result.all_events:
            error = getattr(event.event_specific_data, "error", None)
            if event.event_type_value in ("RESOURCE_INIT_FAILURE", "PIPELINE_FAILURE") and error:
                out.append(f"run {result.run_id[:8]} failed:")
                out += [f"  {line}" for line in error_lines(error)]
                break
    if not out:
        out.append(f"run {result.run_id[:8]} failed (no error was recorded)")
    if log is not None:
        out.append(f"full log: {log}")
    return out


@dataclass
class RunProgress:
    """Listens to one run's events and shows its steps on `out` (a terminal: live lines and a
    bar; anything else: a plain line per finished step)."""

    out: IO[str]
    total: int = 0
    plan: list[str] = field(default_factory=list)
    live: bool | None = None  # None: live when `out` is a terminal
    steps: dict[str, Step] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _live: Any = None

    def __post_init__(self) -> None:
        if self.live is None:
            self.live = bool(getattr(self.out, "isatty", lambda: False)())

    # -- events ---------------------------------------------------------------------------
    def planned(self, steps: list[str]) -> None:
        """The run's steps, before it starts (the bar's total)."""
        self.plan = list(steps)
        self.total = len(steps)

    def __call__(self, entry: Any) -> None:  # noqa: ANN401 - a dagster EventLogEntry
        event = entry.dagster_event
        if event is None or not entry.step_key:
            return
        kind, key, now = event.event_type_value, entry.step_key, time.monotonic()
        with self._lock:
            step = self.steps.get(key)
            if kind == "STEP_START":
                self.steps[key] = Step(key, now)
            elif step is None:
                if kind == "STEP_SKIPPED":
                    self.steps[key] = Step(key, now, now, SKIPPED)
                    self._finished(self.steps[key])
            elif kind == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
                step.checks_failed += 1
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
                step.ended = now
                step.state = {"STEP_SUCCESS": DONE, "STEP_FAILURE": FAILED}.get(kind, SKIPPED)
                if kind == "STEP_FAILURE":
                    self.failures.append(Failure(key, error_lines(event.event_specific_data.error)))
                self._finished(step)

    def _finished(self, step: Step) -> None:
        if not self.live:
            print(f"  {self._line(step, time.monotonic())}", file=self.out, flush=True)

    # -- rendering ------------------------------------------------------------------------
    def finished_count(self) -> int:
        return sum(s.ended is not None for s in self.steps.values())

    def _line(self, step: Step, now: float) -> str:
        mark = {DONE: "ok", FAILED: "!!", SKIPPED: "--"}.get(step.state, "..")
        count = f"[{self.finished_count()}/{self.total}]" if not self.live else ""
        return f"{mark} {step_name(step.key):<36} {step.state_text():<21} {step.seconds(now):6.1f} s  {count}".rstrip()

    def __rich__(self) -> Any:  # noqa: ANN401 - a rich renderable
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        table = Table.grid(padding=(0, 1))
        for _ in range(4):
            table.add_column()
        style = {DONE: "green", FAILED: "bold red", SKIPPED: "dim", RUNNING: "yellow"}
        mark = {DONE: "✓", FAILED: "✗", SKIPPED: "–", RUNNING: "…"}
        with self._lock:
            steps = list(self.steps.values())
            done = self.finished_count()
        for s in steps:
            if s.checks_failed and s.state == DONE:
                state = Text(s.state_text(), style="yellow")
            else:
                state = Text(s.state_text(), style=style[s.state])
            table.add_row(Text(mark[s.state], style=style[s.state]), Text(step_name(s.key)), state,
                          Text(f"{s.seconds(now):6.1f} s", style="cyan"))
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=max(self.total, 1), completed=done, width=40),
                    Text(f"{done}/{self.total} steps  {now - self.started:5.0f} s"))
        return Group(table, bar)

    @contextlib.contextmanager
    def showing(self) -> Iterator[RunProgress]:
        """Show the steps live while the block runs (on a terminal), then leave the last frame."""
        if not self.live:
            yield self
            return
        from rich.console import Console
        from rich.live import Live

        width = shutil.get_terminal_size().columns
        console = Console(file=self.out, width=width, force_terminal=True)
        with Live(self, console=console, refresh_per_second=4, transient=False,
                  redirect_stdout=False, redirect_stderr=False):
            yield self

    def not_run(self) -> list[str]:
        """The planned steps that never started (downstream of a failure)."""
        return sorted(k for k in self.plan if k not in self.steps)


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[IO[str]]:
    """Send all of this process's output (Python's and the file descriptors 1 and 2, so also
    libraries' and C extensions') to `log_path` while the block runs; yields a stream to the
    terminal's standard output for what the user should see."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        terminal_fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a descriptor (pytest's capture)
        terminal_fd = None
    terminal = os.fdopen(os.dup(terminal_fd), "w", buffering=1) if terminal_fd is not None else sys.stdout
    saved = [os.dup(1), os.dup(2)]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - closed below
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield terminal
    finally:
        log.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
        log.close()
        if terminal is not sys.stdout:
            terminal.close()
