"""The drift report flags the demo's shifted days, not the stationary ones; re-runs replace."""

import dagster as dg
import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.monitoring.sensors import build_drift_sensor
from mlinfra_assets.runner import run_assets
from tests.monitoring.conftest import DRIFT_DAY, SYNTHETIC_ROWS, TRAIN_END

FIRST, LAST = "2026-01-12", "2026-01-31"


def materialize_report(spec, resources, instance=None):
    result = run_assets(
        spec, resources, selection=[keys.DRIFT_REPORT], first=FIRST, last=LAST, instance=instance
    )
    events = result.asset_materializations_for_node("monitoring__drift_report")
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    table = con.execute("SELECT * FROM monitoring.drift_report ORDER BY _partition, feature").df()
    con.close()
    return events[-1].metadata, table


def test_stationary_days_are_not_flagged(stationary):
    spec, resources = stationary
    metadata, table = materialize_report(spec, resources)
    assert metadata["drift_detected"].value is False
    assert metadata["drifted_partitions"].value == []
    assert not table["partition_drifted"].any()
    assert table["_partition"].nunique() == 20
    assert set(table["feature"]) == set(
        spec.feature_columns
    )  # no predictions yet: no prediction row
    assert table["psi"].median() < 0.1
    # the reference holds the real rows only
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    total = con.execute("SELECT count(*) FROM training.training_set").fetchall()[0][0]
    con.close()
    assert (table["reference_rows"] == total - SYNTHETIC_ROWS).all()


def test_shifted_days_are_flagged_once(shifted):
    spec, resources = shifted
    instance = dg.DagsterInstance.ephemeral()
    metadata, table = materialize_report(spec, resources, instance)
    flagged = sorted(table.loc[table["partition_drifted"], "_partition"].dt.day.unique().tolist())
    assert flagged == list(range(DRIFT_DAY + 1, 32))  # demo day index 15 is January 16
    assert metadata["drift_detected"].value is True
    assert metadata["drifted_partitions"].value == [f"2026-01-{d:02d}" for d in flagged]
    shifted_days = (
        table[table["_partition"].dt.day > DRIFT_DAY].groupby("feature")["drifted"].mean()
    )
    assert shifted_days["channel"] == 1.0 and shifted_days["card_present"] == 1.0
    assert metadata["max_psi"].value > spec.thresholds.psi_alert
    assert "data:image/png;base64" in metadata["psi_heatmap"].value
    # the sensor reads the real materializations: one retrain request for the flagged days
    sensor = build_drift_sensor()
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    [request] = data.run_requests
    assert (
        request.tags["mlinfra/drifted_partitions"].split(",")
        == metadata["drifted_partitions"].value
    )
    # a re-run replaces the window: nothing duplicated, and no second request for those days
    _, again = materialize_report(spec, resources, instance)
    repeat = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=data.cursor))
    assert not repeat.run_requests
    assert len(again) == len(table)
    assert again["psi"].round(12).tolist() == table["psi"].round(12).tolist()


def test_missing_training_set_names_it(stationary, tmp_path):
    spec, resources = stationary
    con = duckdb.connect(resources["warehouse"].path)
    con.execute("ALTER TABLE training.training_set RENAME TO training_set_aside")
    con.close()
    try:
        with pytest.raises(Exception, match="training.training_set does not exist"):
            run_assets(spec, resources, selection=[keys.DRIFT_REPORT], first=FIRST, last=FIRST)
    finally:
        con = duckdb.connect(resources["warehouse"].path)
        con.execute("ALTER TABLE training.training_set_aside RENAME TO training_set")
        con.close()


def test_a_day_the_model_was_trained_on_is_never_compared_with_itself(stationary):
    """The training window (the first ten days) compared with its own reference in two held-out
    blocks (days 1-5 and 6-10): each day against the reference without its block, none
    flagged; the days after it against the whole reference."""
    spec, resources = stationary
    result = run_assets(spec, resources, selection=[keys.DRIFT_REPORT], first="2026-01-01", last="2026-01-13")
    metadata = result.asset_materializations_for_node("monitoring__drift_report")[-1].metadata
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    table = con.execute("SELECT * FROM monitoring.drift_report WHERE _partition <= DATE '2026-01-13'").df()
    per_day = dict(con.execute(
        f"SELECT _partition, count(*) FROM raw.transactions WHERE _partition < DATE '{TRAIN_END}' GROUP BY 1"
    ).fetchall())
    con.close()
    reference = sum(per_day.values())
    rows = table.groupby(table["_partition"].dt.date)["reference_rows"].agg(["min", "max"])
    assert len(rows) == 13
    days = sorted(per_day)
    blocks = [days[0:5], days[5:10]]
    for day, (low, high) in rows.iterrows():
        block = next((b for b in blocks if day in b), [])
        assert low == high == reference - sum(per_day[d] for d in block), day  # its block left out
    assert not table["partition_drifted"].any() and metadata["drift_detected"].value is False
    assert "training.training_set" in metadata["reference"].value  # no model version recorded one
