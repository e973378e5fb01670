"""The continual-learning loop, as the daemon runs it: days D-3..D+3 of a demo with a covariate and
a concept shift from day D, through a DagsterInstance in a temporary DAGSTER_HOME; on D+1 the
annotators answer the queue the drift retrain refreshed, and the new-labels sensor retrains. Schedules,
sensors and automation conditions are evaluated the way the daemon does; the runs they request
are executed in-process from the code location's job definitions."""

import shutil
import time
from datetime import date, timedelta

import dagster as dg
import duckdb
import numpy as np
import pytest

from mlinfra_assets import keys
from mlinfra_assets.definitions import build_definitions
from mlinfra_assets.edge.sensors import built_for
from mlinfra_assets.monitoring.sensors import (
    DAYS_TAG,
    DRIFT_SENSOR,
    LABELS_SENSOR,
    NEW_LABELS_TAG,
    TRIGGER_TAG,
)
from mlinfra_assets.replay import Daemon, Day, holdout_figure, loop_lines, replay_after_history
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_job
from mlinfra_assets.spec import PROJECT_ROOT
from mlinfra_assets.training import evaluation, registry
from mlinfra_assets.training.trainer import TrainConfig
from tests.conftest import small_spec

pytestmark = pytest.mark.integration

ROWS = 40_000
SHIFT = 20  # demo day index: D = 2026-01-21
START = date(2026, 1, 1)
D = START + timedelta(days=SHIFT)
ANSWERED = 1  # the day (offset from D) the annotators have answered the refreshed queue


def day(offset: int) -> str:
    return (D + timedelta(days=offset)).isoformat()


def _post_shift(resources: dict, spec, version: str, first: str):  # noqa: ANN202
    """The registered model's decisions and the truth on every day from `first` the source holds."""
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    rows = con.execute(
        f"SELECT s.*, o.{spec.gold.column} AS _gold FROM {spec.source.table} s "
        f"JOIN {spec.gold.table} o USING ({spec.id_column}) WHERE s.{spec.timestamp_column} >= ?::DATE",
        [first],
    ).df()
    con.close()
    model = registry.load_version(resources["mlflow"], spec.name, version)
    return model.predict_proba(rows[spec.feature_columns]).argmax(axis=1), rows["_gold"].to_numpy()


def post_shift_flagged(resources: dict, spec, version: str, first: str) -> tuple[int, int]:
    """(rows the version flags, fraud rows) on every day from `first` the source holds."""
    predicted, truth = _post_shift(resources, spec, version, first)
    return int((predicted == spec.positive_index).sum()), int((truth == spec.positive_index).sum())


def post_shift_f1(resources: dict, spec, version: str, first: str) -> tuple[float, int]:
    """F1 of a registered model on every day from `first` that the demo's source holds: the days
    the daily runs scored and the month's remaining ones (~10 days, ~320 fraud rows at 40k rows).
    Three days hold ~100 fraud rows, and their F1 moved by a few hundredths with any change of
    the net (docs/edge.md, "The loop, and why the switch waited..."). Returns (F1, fraud rows)."""
    from sklearn.metrics import f1_score

    predicted, truth = _post_shift(resources, spec, version, first)
    return float(f1_score(truth, predicted, pos_label=spec.positive_index)), int((truth == spec.positive_index).sum())


def assert_the_gate_followed_its_rule(resources: dict, spec, gate: dict, champion_now: str) -> None:
    """The gate's decision is the one its rule gives on the full-precision figures it stored in
    training.evaluation (the challenger's metric beats the majority-class baseline and is at
    least the champion's minus training.promotion_margin), and the registry followed it."""
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    rows = con.execute(
        "SELECT metric, value, champion_version, decision FROM training.evaluation "
        "WHERE model_version = ? AND slice = 'overall'", [gate["challenger_version"].value],
    ).fetchall()
    con.close()
    figures = {metric: value for metric, value, *_ in rows}
    value, champion = figures[spec.metric], figures[f"champion_{spec.metric}"]
    majority = figures[evaluation.baseline_metric("majority", spec.metric)]
    promote = value > majority and value >= champion - spec.training.promotion_margin
    print(f"gate v{gate['challenger_version'].value}: {spec.metric} {value:.4f}, champion "
          f"v{gate['champion_version_before'].value} {champion:.4f}, majority {majority:.4f}: "
          f"{gate['decision'].value}")
    # a promotion with a champion in place goes through serving.shadow_days of shadow scoring
    expected = evaluation.SHADOW if promote else evaluation.KEEP
    assert {(c, d) for *_, c, d in rows} == {(gate["champion_version_before"].value, expected)}
    assert gate["decision"].value == expected, gate["reason"].value
    assert gate["shadow_version"].value == (gate["challenger_version"].value if promote else "none")
    assert gate["champion_version_after"].value == gate["champion_version_before"].value == champion_now


def shadow_outcome(days: list[dict], version: str) -> dict:
    """The daily run's monitoring/shadow metadata on the day `version`'s shadow period ended."""
    [outcome] = [d["replayed"].shadow for d in days
                 if d["replayed"].shadow_decided and d["replayed"].shadow["shadow_version"] == version]
    return outcome


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    demo = small_spec().demo.model_dump()
    demo.update(rows=ROWS, drift={"day": SHIFT, "covariate": True, "concept": True})
    spec = small_spec(rows=ROWS, demo=demo)
    spec.synthetic.utility = False  # reported only (two extra trainings per run): tests/synthetic measure it
    resources = default_resources(root / "data")
    instance = dg.DagsterInstance.from_config(str(home))
    started = time.monotonic()
    # history: everything up to D-4, the first champion trained on pre-shift days only
    first = run_job(spec, resources, keys.FULL_JOB, instance=instance, first=START.isoformat(), last=day(-4))
    assert first.success
    old_champion = registry.champion_version(resources["mlflow"], spec.name)
    daemon = Daemon(build_definitions(spec, resources), instance)
    extras = {}

    def after_the_sensor(d: Day) -> None:  # what else the daemon and the annotators do that day
        answered = None
        if d.day == day(ANSWERED):  # annotators answer the queue the drift retrain refreshed
            answered = daemon.execute(keys.ANNOTATIONS_JOB, dg.RunRequest())
        label_retrains = daemon.sensor_tick(LABELS_SENSOR)
        extras[d.day] = {
            "answered": answered, "label_retrains": label_retrains, "refreshed": daemon.automation_tick(),
            "champion": registry.champion_version(resources["mlflow"], spec.name),
            "elapsed_s": round(time.monotonic() - started, 1),
        }

    shown = []  # what `mlinfra run` prints, a line per day (the history's reports flag nothing)
    before, replayed = replay_after_history(spec, resources, instance, [day(offset) for offset in range(-3, 4)],
                                            shown.append, after_the_sensor, daemon)
    assert before == old_champion and len(shown) == 8 and "retrain_job" not in shown[0]
    days = [{
        "day": d.day, "daily_ok": d.daily.success, "flagged": d.flagged,
        "drifted_share": d.report["drifted_share"], "max_psi": d.report["max_psi"],
        "retrains": d.retrains, "replayed": d, **extras[d.day],
    } for d in replayed]
    yield spec, resources, instance, daemon, days, old_champion
    instance.dispose()


def test_no_alarm_before_the_shift_one_at_it(loop):
    *_, days, _ = loop
    for d in days:
        print(f"{d['day']}  flagged={d['flagged']!s:5}  drifted_share={d['drifted_share']:.2f}  "
              f"max_psi={d['max_psi']:.2f}  retrains={len(d['retrains'])}+{len(d['label_retrains'])}  "
              f"champion=v{d['champion']}  "
              f"t={d['elapsed_s']}s")
    assert all(d["daily_ok"] for d in days)
    assert [d["flagged"] for d in days[:3]] == [False, False, False]
    assert days[3]["flagged"] is True and days[3]["day"] == D.isoformat()
    assert not any(d["retrains"] or d["label_retrains"] for d in days[:3])


def test_exactly_one_retraining_and_the_challenger_is_gated(loop):
    spec, resources, instance, daemon, days, old = loop
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=keys.RETRAIN_JOB, tags={TRIGGER_TAG: DRIFT_SENSOR}))
    assert len(runs) == 1 and runs[0].tags[DAYS_TAG] == D.isoformat()
    [(request, result)] = days[3]["retrains"]
    assert result.success and daemon.failures_reported == 0
    gate = result.asset_materializations_for_node("training__evaluation")[-1].metadata
    assert gate["champion_version_before"].value == old
    assert_the_gate_followed_its_rule(resources, spec, gate, days[3]["champion"])
    if gate["decision"].value == evaluation.SHADOW:  # the next day's daily run scores it beside the champion
        outcome = shadow_outcome(days, gate["challenger_version"].value)
        assert days[4]["replayed"].shadow == outcome and outcome["partitions_scored"] == spec.serving.shadow_days
        promoted = outcome["decision"] == "promote"
        assert days[4]["replayed"].champion == (gate["challenger_version"].value if promoted else old)
        # the champion moved outside retrain_job: edge_follows_champion rebuilds the edge variants
        edge = days[4]["replayed"].edge
        assert [(r.tags["mlinfra/champion_version"], run.success) for r, run in edge] == (
            [(gate["challenger_version"].value, True)] if promoted else [])
    # days after D still drift (the new reference holds one shifted day): the cooldown holds
    assert all(d["flagged"] and not d["retrains"] for d in days[4:])


def test_the_promoted_model_scores_the_days_after_the_shift_better(loop):
    spec, resources, instance, daemon, days, old = loop
    new = registry.champion_version(resources["mlflow"], spec.name)
    assert new != old
    # the champion changes when a shadow period ends, in a daily run after its own predictions
    [last] = [d["day"] for d in days if d["replayed"].shadow_decided and d["replayed"].champion == new
              and d["replayed"].shadow["decision"] == "promote"]
    assert last < day(3)
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    versions = con.execute(
        "SELECT DISTINCT _model_version FROM monitoring.predictions WHERE _partition > ?", [last]
    ).fetchall()
    history = con.execute("SELECT * FROM analytics.drift_history ORDER BY day").df()
    con.close()
    assert versions == [(new,)]  # the days after the last promotion are scored by that champion
    assert built_for(instance)[0] == new  # and the edge variants are of that champion
    (before, fraud), (after, _) = post_shift_f1(resources, spec, old, day(1)), post_shift_f1(resources, spec, new, day(1))
    print(f"F1 from {day(1)} ({fraud} fraud rows): old champion v{old} {before:.3f}, promoted v{new} {after:.3f}")
    assert after > before
    # the analytics views refreshed by declarative automation show the same days
    assert any("analytics/drift_history" in d["refreshed"] for d in days)
    flagged = history.set_index(history["day"].dt.strftime("%Y-%m-%d"))["flagged"]
    assert [bool(flagged[day(o)]) for o in range(-3, 4)] == [d["flagged"] for d in days]
    assert np.isfinite(history["max_psi"]).all()


def test_the_answered_queue_starts_one_retraining_on_the_new_labels(loop):
    """The day after the alarm the annotators have answered the queue the drift retrain
    refreshed (the demo's simulated annotator, as an annotations_job run); the new-labels
    sensor requests one retraining that trains on those labels, and the gate decides again."""
    spec, resources, instance, daemon, days, old = loop
    answered = days[3 + ANSWERED]["answered"]
    assert answered.success
    landed = answered.asset_materializations_for_node("labeling__annotations")[-1].metadata
    assert landed["simulated_answers"].value == spec.active_learning.batch_size
    assert [bool(d["label_retrains"]) for d in days] == [o == ANSWERED for o in range(-3, 4)]
    [(request, result)] = days[3 + ANSWERED]["label_retrains"]
    assert request.tags[TRIGGER_TAG] == LABELS_SENSOR
    assert int(request.tags[NEW_LABELS_TAG]) >= spec.thresholds.retrain_new_gold_labels
    assert result.success and daemon.failures_reported == 0
    [(_, drift_run)] = days[3]["retrains"]
    gold_rows = [r.asset_materializations_for_node("training__training_set")[-1].metadata["rows_gold"].value
                 for r in (drift_run, result)]
    assert gold_rows[1] - gold_rows[0] >= 0.8 * spec.active_learning.batch_size  # the answers train (holdout rows don't)
    gate = result.asset_materializations_for_node("training__evaluation")[-1].metadata
    # the champion after that day's daily run (the drift retrain's shadow period ended there)
    assert gate["champion_version_before"].value == days[3 + ANSWERED]["replayed"].champion
    assert_the_gate_followed_its_rule(resources, spec, gate, days[3 + ANSWERED]["champion"])
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=keys.RETRAIN_JOB, tags={TRIGGER_TAG: LABELS_SENSOR}))
    assert len(runs) == 1


def test_no_retrain_flags_more_than_twice_the_fraud_rows_of_the_days_after_the_shift(loop):
    """Each retrain's decision is capped on the latest scored days (at most 1.5x the positive
    share the champion's calibrated probabilities expect there), so after the shift it flags at
    most twice the fraud rows of the days from D+1 (the issue's target)."""
    spec, resources, instance, daemon, days, old = loop
    factor = TrainConfig.prevalence_factor
    for d, kind in ((days[3], "retrains"), (days[3 + ANSWERED], "label_retrains")):
        [(_, run)] = d[kind]
        meta = run.asset_materializations_for_node("training__model")[-1].metadata
        version = meta["registered_version"].value
        assert f".. {d['day']} (" in meta["recent_rows"].value  # the latest days, up to the retrain's
        rows = int(meta["recent_rows"].value.split(" rows")[0].replace(",", ""))
        assert meta["recent_flagged_share"].value <= factor * meta["recent_expected_positive_share"].value + 2 / rows
        flagged, fraud = post_shift_flagged(resources, spec, version, day(1))
        print(f"{kind} v{version}: flags {flagged} rows from {day(1)} for {fraud} fraud rows; {meta['decision'].value}")
        assert flagged <= 2 * fraud


def test_the_run_summary_tells_the_loop_in_a_few_lines(loop):
    """What `mlinfra run` prints after a replay (replay.loop_lines): the quiet days and the first
    drifted day (one line), the retraining it started with the gate's decision, and the metric of the model
    before and after on the holdout rows of the days from the shift."""
    spec, resources, instance, daemon, days, old = loop
    lines = loop_lines(spec, resources, [d["replayed"] for d in days], old)
    print("\n".join(lines))
    assert lines[0].startswith(f"== the loop ({day(-3)} .. {day(3)}")
    assert lines[1].startswith(f"  no drift on {day(-3)}, {day(-2)}, {day(-1)}; first drifted day {D.isoformat()}: ")
    [retrain] = [line for line in lines if "retrain_job run" in line]  # the labels retrain is not the drift sensor's
    gate = days[3]["retrains"][0][1].asset_materializations_for_node("training__evaluation")[-1].metadata
    assert retrain.startswith(f"  {D.isoformat()}: retrain_job run ") and f"gate {gate['decision'].value}" in retrain
    ended = [d["replayed"] for d in days if d["replayed"].shadow_decided]
    shadows = [line for line in lines if ": shadow v" in line]  # each shadow period that ended, with its reason
    assert len(shadows) == len(ended) >= 1
    for d, line in zip(ended, shadows, strict=True):
        assert line.startswith(f"  {d.day}: shadow v{d.shadow['shadow_version']} after ") and d.shadow["reason"] in line
    last = lines[-1]
    new = registry.champion_version(resources["mlflow"], spec.name)
    assert last.startswith(f"  f1_fraud from {D.isoformat()} on the holdout rows (") and f"v{old} " in last
    assert f"-> v{new} " in last if new != old else "kept" in last
    for version in {old, new}:
        figure = holdout_figure(spec, resources, version, D.isoformat())
        assert 0 <= figure.low <= figure.value <= figure.high <= 1 and figure.positives > 0
        assert f"v{version} {figure.value:.3f} [{figure.low:.3f}, {figure.high:.3f}]" in last
    assert f"({figure.rows} rows, {figure.positives} fraud)" in last
