"""`mlinfra run --replay-from`: which days are replayed, and a clear refusal where it cannot be
(the replay itself runs in tests/test_loop.py, through the same replay_after_history)."""

import os
import subprocess
import sys

import pytest
import yaml

from mlinfra_assets.replay import day_keys, default_replay_from
from mlinfra_assets.spec import SpecError
from tests.conftest import small_spec


def test_the_demo_with_a_shift_replays_from_two_days_before_it():
    demo = small_spec().demo.model_dump()
    demo["drift"]["day"] = 26  # 2026-01-27
    spec = small_spec(demo=demo)
    assert default_replay_from(spec) == "2026-01-25"
    assert day_keys(spec, "2026-01-25") == [f"2026-01-{d}" for d in range(25, 32)]
    assert day_keys(spec, "2026-01-25", "2026-01-26") == ["2026-01-25", "2026-01-26"]
    assert default_replay_from(small_spec()) is None  # no shift: one run over every day


@pytest.mark.parametrize(("first", "message"), [
    ("2026-01-01", "pick a day after source.start_date 2026-01-01 and up to 2026-01-31"),
    ("2026-02-01", "pick a day after source.start_date"),
    ("January 5", "give a day as YYYY-MM-DD"),
])
def test_a_day_outside_the_source_is_refused_by_name(first, message):
    with pytest.raises(SpecError, match=message):
        day_keys(small_spec(), first)


def test_a_spec_without_a_timestamp_is_refused_in_one_line(tmp_path):
    """`mlinfra run --replay-from` on a batch spec: exit 2, one line naming the setting, no
    traceback, before anything runs."""
    data = small_spec().model_dump(mode="json")
    data.update(timestamp_column=None, demo=None)
    data["source"].update(start_date=None, end_date=None)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(data))
    done = subprocess.run(
        [sys.executable, "-m", "mlinfra_assets.cli", "run", "--spec", str(spec_path), "--replay-from", "2026-01-05"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "MLINFRA_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "home")},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: --replay-from replays daily partitions: the spec needs a timestamp_column with source.cadence "
        "daily (without a timestamp each `mlinfra run` ingests the new batch)"]
    assert not (tmp_path / "data" / "logs").exists()  # nothing ran
