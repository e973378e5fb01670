"""The daemon's loop, replayed in-process: each day's scheduled run, then the retraining sensor.

`mlinfra run --replay-from DAY` (and `make run` on the demo, whose default spec shifts its data
near the end of the month) materializes the history before DAY in one run, then replays the
days from DAY the way `dagster-daemon` would run them: the schedule's tick at the end of each
day starts the daily job (ingest, score, drift, performance), and the drift sensor reads its
reports and requests a retraining when the day drifted (or its metric dropped). The runs are
recorded in the Dagster instance like the daemon's, so `make ui` shows them.

`Daemon` evaluates schedules, sensors and automation conditions as the daemon does (cursors
kept between ticks) and executes the runs they request in-process; `tests/test_loop.py` drives
it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg

from mlinfra_assets.spec import DatasetSpec, SpecError

SCHEDULE = "daily_ingest_and_score"


class Daemon:
    """Evaluates the code location's schedule, sensors and automation conditions like the
    daemon does (cursors kept between ticks) and executes the runs they request in-process."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.cursors: dict[str, str | None] = {}
        self.automation_cursor = None
        self.failures_reported = 0

    def execute(self, job_name: str, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(job_name)
        result = job.execute_in_process(
            instance=self.instance, partition_key=request.partition_key,
            tags=request.tags, raise_on_error=False,
        )
        if not result.success:  # what the run-failure sensor would see
            self.report_failure(result)
        return result

    def report_failure(self, result: dg.ExecuteInProcessResult) -> None:
        from mlinfra_assets.monitoring.sensors import RUN_FAILURE_SENSOR

        sensor = self.defs.resolve_sensor_def(RUN_FAILURE_SENSOR)
        context = dg.build_run_status_sensor_context(
            sensor_name=RUN_FAILURE_SENSOR, dagster_instance=self.instance,
            dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
            resources={"data_dir": self.defs.resources["data_dir"]},
        ).for_run_failure()
        sensor(context)
        self.failures_reported += 1

    def schedule_tick(self, at: datetime) -> list[dg.ExecuteInProcessResult]:
        schedule = self.defs.resolve_schedule_def(SCHEDULE)
        data = schedule.evaluate_tick(
            dg.build_schedule_context(instance=self.instance, scheduled_execution_time=at)
        )
        return [self.execute(schedule.job_name, r) for r in data.run_requests or []]

    def sensor_tick(self, name: str) -> list[tuple[dg.RunRequest, dg.ExecuteInProcessResult]]:
        sensor = self.defs.resolve_sensor_def(name)
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursors.get(name), definitions=self.defs,
            resources=self.defs.resources,  # a sensor may take resources (edge_follows_champion: mlflow)
        )
        data = sensor.evaluate_tick(context)
        self.cursors[name] = data.cursor
        return [(r, self.execute(sensor.job_name, r)) for r in data.run_requests or []]

    def automation_tick(self) -> list[str]:
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.automation_cursor
        )
        self.automation_cursor = result.cursor
        requested = [k for k in self.defs.resolve_all_asset_keys() if result.get_num_requested(k)]
        if requested:
            job = dg.define_asset_job("automation_run", selection=requested)
            merged = dg.Definitions.merge(self.defs, dg.Definitions(jobs=[job]))
            merged.resolve_job_def("automation_run").execute_in_process(instance=self.instance)
        return [k.to_user_string() for k in requested]


@dataclass
class Day:
    """One replayed day: its daily run, what its drift report said, the retrainings it started."""

    day: str
    daily: dg.ExecuteInProcessResult
    report: dict[str, Any]
    retrains: list[tuple[dg.RunRequest, dg.ExecuteInProcessResult]] = field(default_factory=list)
    champion: str | None = None
    seconds: float = 0.0
    # edge_job runs edge_follows_champion started (the champion moved outside retrain_job)
    edge: list[tuple[dg.RunRequest, dg.ExecuteInProcessResult]] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.report.get("drift_detected"))

    def gates(self) -> list[dict[str, Any]]:
        """The gate's metadata of each retraining this day started."""
        gates = [r.asset_materializations_for_node("training__evaluation") for _, r in self.retrains]
        return [{k: v.value for k, v in g[-1].metadata.items()} if g else {} for g in gates]

    @property
    def shadow(self) -> dict[str, Any]:
        """The daily run's monitoring/shadow metadata (empty when it did not run)."""
        found = self.daily.asset_materializations_for_node("monitoring__shadow")
        return {k: v.value for k, v in found[-1].metadata.items()} if found else {}

    @property
    def shadow_decided(self) -> bool:
        """Whether this day's shadow period ended (promoted or kept out)."""
        return self.shadow.get("decision") in ("promote", "keep_out")


def default_replay_from(spec: DatasetSpec) -> str | None:
    """The demo with a shift (`demo.drift.day`): two days before it, so the replay shows quiet
    days, then the shift; None for any other spec (its run materializes everything at once)."""
    drift = spec.demo.drift if spec.demo is not None else None
    if drift is None or drift.day is None or not spec.has_timestamp or spec.source.cadence != "daily":
        return None
    return (spec.source.start_date + timedelta(days=max(drift.day - 2, 1))).isoformat()


def day_keys(spec: DatasetSpec, first: str, last: str | None = None) -> list[str]:
    """The daily partition keys from `first` to `last` (default: the source's last day)."""
    if not spec.has_timestamp or spec.source.cadence != "daily":
        raise SpecError(
            "--replay-from replays daily partitions: the spec needs a timestamp_column with "
            "source.cadence daily (without a timestamp each `mlinfra run` ingests the new batch)"
        )
    end = spec.source.end_date
    if last is None and end is None:
        raise SpecError("--replay-from needs source.end_date: the source is open-ended")
    stop = date.fromisoformat(last) if last else end - timedelta(days=1)
    try:
        start = date.fromisoformat(first)
    except ValueError:
        raise SpecError(f"--replay-from {first!r}: give a day as YYYY-MM-DD") from None
    if not spec.source.start_date < start <= stop:
        raise SpecError(f"--replay-from {first}: pick a day after source.start_date "
                         f"{spec.source.start_date} and up to {stop}")
    return [(start + timedelta(days=i)).isoformat() for i in range((stop - start).days + 1)]


def _number(value: object) -> str:
    """A report figure as the summary shows it: 3 decimals, or the sentence saying why not."""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def day_line(day: Day) -> str:
    """One line for a replayed day: its daily run, the drift, the retrainings and their gates."""
    state = "ok" if day.daily.success else "FAILED"
    if not day.report:
        drift = "no drift report"
    elif day.flagged:
        drift = f"DRIFT ({day.report.get('drifted_features')} features, max PSI {_number(day.report.get('max_psi'))})"
    else:
        drift = f"no drift (max PSI {_number(day.report.get('max_psi'))})"
    line = f"  {day.day}  daily run {state}  {drift}"
    if day.shadow.get("decision"):
        line += f"  shadow v{day.shadow['shadow_version']}: {day.shadow['decision']}"
    for (_, run), gate in zip(day.retrains, day.gates(), strict=True):
        line += (f"  -> retrain_job {'ok' if run.success else 'FAILED'}: gate {gate.get('decision', 'not reached')}, "
                 f"champion v{day.champion}")
    for request, run in day.edge:
        line += f"  -> edge_job {'ok' if run.success else 'FAILED'} for v{request.tags.get('mlinfra/champion_version')}"
    return f"{line}  ({day.seconds:.0f} s)"


def replay(
    spec: DatasetSpec, daemon: Daemon, days: list[str], on_day: Callable[[Day], None] | None = None
) -> list[Day]:
    """Each day: the schedule's tick at its end (the daily run of that day), then the drift
    sensor's tick (a retraining when the day drifted or its metric dropped), then the edge
    sensor's (the variants rebuilt when a shadow period promoted a new champion)."""
    from mlinfra_assets.edge.sensors import EDGE_SENSOR
    from mlinfra_assets.monitoring.sensors import DRIFT_SENSOR
    from mlinfra_assets.training import registry

    mlflow = daemon.defs.resources["mlflow"]
    out = []
    for key in days:
        started = time.monotonic()
        midnight = datetime.combine(date.fromisoformat(key) + timedelta(days=1), datetime.min.time())
        [daily] = daemon.schedule_tick(midnight)
        reports = daily.asset_materializations_for_node("monitoring__drift_report")
        report = {k: v.value for k, v in reports[-1].metadata.items()} if reports else {}
        retrains = daemon.sensor_tick(DRIFT_SENSOR) if daily.success else []
        edge = daemon.sensor_tick(EDGE_SENSOR)
        day = Day(key, daily, report, retrains, registry.champion_version(mlflow, spec.name),
                  time.monotonic() - started, edge)
        out.append(day)
        if on_day is not None:
            on_day(day)
    return out



def replay_after_history(
    spec: DatasetSpec, resources: dict[str, Any], instance: dg.DagsterInstance, days: list[str],
    show: Callable[[str], None], on_day: Callable[[Day], None] | None = None, daemon: Daemon | None = None,
) -> tuple[str | None, list[Day]]:
    """After the history run (the days before `days`): the champion it left, and the days
    replayed as the daemon runs them, a line each as it ends (`show`), then `on_day` (what
    else happens that day). The drift sensor reads the history's reports first: a false alarm
    there would retrain too, and says so."""
    from mlinfra_assets.definitions import build_definitions
    from mlinfra_assets.monitoring.sensors import DRIFT_SENSOR
    from mlinfra_assets.training import registry

    before = registry.champion_version(resources["mlflow"], spec.name)
    if not days:
        return before, []
    show(f"replaying {days[0]} .. {days[-1]} as the daemon runs them (the daily run, then the drift sensor):")
    daemon = daemon or Daemon(build_definitions(spec, resources), instance)
    for request, run in daemon.sensor_tick(DRIFT_SENSOR):
        show(f"  the history's reports: retrain_job run {run.run_id[:8]} {'ok' if run.success else 'FAILED'} "
             f"for {request.tags.get('mlinfra/drifted_partitions')}")

    def ended(day: Day) -> None:
        show(day_line(day))
        if on_day is not None:
            on_day(day)

    return before, replay(spec, daemon, days, ended)


@dataclass(frozen=True)
class Figure:
    """A model's metric on the frozen holdout rows of some days, with a 95% bootstrap interval."""

    value: float
    low: float
    high: float
    rows: int
    positives: int  # two classes: rows of the positive class; more: rows of the rarest class


def holdout_figure(spec: DatasetSpec, resources: dict[str, Any], version: str, first: str) -> Figure | str:
    """The spec's metric of model `version` on the frozen holdout rows of the days from `first`
    (no model version ever trains on them), labelled like the gate's holdout (gold, else the
    annotations); a sentence instead when it cannot be computed."""
    import numpy as np

    from mlinfra_assets.holdout import evaluation_labels, holdout_predicate
    from mlinfra_assets.monitoring.performance import interval
    from mlinfra_assets.training import registry
    from mlinfra_assets.training.metrics import metric_score

    features = ", ".join(f"r.{c}" for c in spec.feature_columns)
    with resources["warehouse"].connect(read_only=True) as con:
        rows = con.execute(
            f"SELECT {features}, g.label AS _gold FROM {spec.raw_table} r "
            f"JOIN ({evaluation_labels(spec)}) g ON CAST(r.{spec.id_column} AS VARCHAR) = g.row_id "
            f"WHERE r._partition >= CAST(? AS DATE) AND {holdout_predicate(spec, 'g.row_id')} "
            f"ORDER BY g.row_id",  # the bootstrap interval's resamples index rows: one order
            [first],
        ).df()
    if rows.empty:
        return f"no labelled holdout row from {first}"
    model = registry.load_version(resources["mlflow"], spec.name, version)
    predicted = model.predict_proba(rows[spec.feature_columns]).argmax(axis=1)
    truth = rows["_gold"].to_numpy()
    value = metric_score(spec.metric, truth, predicted, spec.n_classes, spec.positive_index)
    if value != value:
        return f"{spec.metric} is undefined on the {len(rows)} holdout rows from {first}"
    low, high = interval(spec, truth, predicted)
    counts = np.bincount(truth, minlength=spec.n_classes)
    positives = int(counts[spec.positive_index] if spec.n_classes == 2 else counts.min())
    return Figure(float(value), low, high, len(rows), positives)


def _shown(figure: Figure | str) -> str:
    if isinstance(figure, str):
        return figure
    return f"{figure.value:.3f} [{figure.low:.3f}, {figure.high:.3f}]"


def loop_lines(spec: DatasetSpec, resources: dict[str, Any], days: list[Day], before: str | None) -> list[str]:
    """The loop in a few lines: the days replayed, the first drifted day, the retraining it
    started, the gate's decision, the shadow periods that ended, and the metric before and after
    on the holdout rows of the days from the first drifted one."""
    from mlinfra_assets.monitoring.performance import metric_name

    flagged = [d for d in days if d.flagged]
    lines = [f"== the loop ({days[0].day} .. {days[-1].day} replayed as the daemon runs them: "
             f"the daily run, then the drift sensor)"]
    quiet = [d.day for d in days if not d.flagged and (not flagged or d.day < flagged[0].day)]
    if not flagged:
        lines.append("  no day drifted: no retraining")
        return lines
    first = flagged[0]
    before_it = f"no drift on {', '.join(quiet)}; " if quiet else ""
    lines.append(f"  {before_it}first drifted day {first.day}: "
                 f"{first.report.get('drifted_features')} features drifted "
                 f"(share {_number(first.report.get('drifted_share'))}, max PSI {_number(first.report.get('max_psi'))})")
    retrained = [d for d in days if d.retrains]
    if not retrained:
        lines.append("  no retraining requested (the drift sensor's cooldown or an earlier event)")
        return lines
    for d in retrained:
        for (request, run), gate in zip(d.retrains, d.gates(), strict=True):
            lines.append(f"  {d.day}: retrain_job run {run.run_id[:8]} ({'ok' if run.success else 'FAILED'}) "
                         f"for {request.tags.get('mlinfra/drifted_partitions')}: gate "
                         f"{gate.get('decision', 'not reached')}: {gate.get('reason', '')}".rstrip(": "))
    for d in days:
        if d.shadow_decided:
            lines.append(f"  {d.day}: shadow v{d.shadow['shadow_version']} after {d.shadow['partitions_scored']} "
                         f"partition(s): {d.shadow['decision']}: {d.shadow['reason']}")
    after = days[-1].champion
    if before is None or after is None:
        return lines
    name = metric_name(spec)
    old = holdout_figure(spec, resources, before, first.day)
    if after == before:
        lines.append(f"  {name} from {first.day} (holdout rows): champion v{before} kept, {_shown(old)}")
        return lines
    new = holdout_figure(spec, resources, after, first.day)
    size = f" ({old.rows} rows, {old.positives} {spec.classes[spec.positive_index]})" if (
        isinstance(old, Figure) and spec.n_classes == 2) else ""
    lines.append(f"  {name} from {first.day} on the holdout rows{size}: v{before} {_shown(old)} "
                 f"-> v{after} {_shown(new)}")
    return lines
