"""A CSV source with no timestamp and no id: batch partitions (one per new file, or per run
of a single file with new rows), generated ids stable across reads, the new-files sensor."""

import dagster as dg
import duckdb
import pandas as pd
import pytest

from mlinfra_assets import keys
from mlinfra_assets.definitions import build_definitions
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.warehouse.partitions import batches_name
from mlinfra_assets.warehouse.sensors import NEW_FILES_SENSOR
from mlinfra_assets.warehouse.source import source_select
from tests.warehouse.wine import features, wine_frame, wine_spec, write_batch

RAW = "raw.wine"


def ingest(spec, resources, instance):
    return run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], instance=instance)


def rows(path: str, sql: str) -> pd.DataFrame:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def test_generated_ids_are_stable_and_distinct_for_duplicate_rows(tmp_path):
    frame = wine_frame()
    first = pd.concat([frame.iloc[:60], frame.iloc[[0, 0]]], ignore_index=True)  # row 0 three times
    write_batch(tmp_path, "part-1.csv", first)
    spec = wine_spec(tmp_path)
    sql, params = source_select(spec)
    con = duckdb.connect()
    a = con.execute(f"SELECT * FROM {sql} AS s", params).df()
    b = con.execute(f"SELECT * FROM {sql} AS s ORDER BY random()", params).df()
    con.close()
    assert a["_row_id"].is_unique and len(a) == 62
    assert "target" in a.columns  # every column of the source, the target too (gold reads it)
    assert sorted(a["_row_id"]) == sorted(b["_row_id"])  # another read: the same ids
    hashes = a["_row_id"].str.rsplit("-", n=1).str[0].value_counts()
    assert hashes.max() == 3 and (hashes == 3).sum() == 1  # the three copies share the content hash
    copies = a[a["_row_id"].str.startswith(hashes.index[0])]
    assert sorted(copies["_row_id"].str.rsplit("-", n=1).str[1]) == ["1", "2", "3"]


def test_two_files_are_two_batches_and_a_rerun_replaces(tmp_path):
    frame = wine_frame()
    spec = wine_spec(tmp_path)  # source.path incoming/*.csv, relative to the spec's folder
    resources = default_resources(tmp_path / "data")
    path = resources["warehouse"].path
    instance = dg.DagsterInstance.ephemeral()
    write_batch(tmp_path, "part-1.csv", frame.iloc[:90])
    first = ingest(spec, resources, instance)
    assert instance.get_dynamic_partitions(batches_name(spec)) == ["batch-00001"]
    meta = first.asset_materializations_for_node("raw_wine")[0].metadata
    assert meta["rows_landed"].value == 90 and meta["window"].value == "batch-00001"

    write_batch(tmp_path, "part-2.csv", frame.iloc[90:])
    second = ingest(spec, resources, instance)
    assert instance.get_dynamic_partitions(batches_name(spec)) == ["batch-00001", "batch-00002"]
    assert second.success
    landed = rows(path, f"SELECT _partition, count(*) AS n, count(DISTINCT _row_id) AS ids FROM {RAW} GROUP BY 1 ORDER BY 1")
    assert landed["_partition"].tolist() == [1, 2] and landed["n"].tolist() == [90, 88]
    assert landed["ids"].tolist() == landed["n"].tolist()
    manifest = rows(path, "SELECT batch, partition_key, file, rows FROM raw.batches ORDER BY batch")
    assert [f.rsplit("/", 1)[-1] for f in manifest["file"]] == ["part-1.csv", "part-2.csv"]
    assert manifest["rows"].tolist() == [90, 88]
    assert set(rows(path, f"SELECT * FROM {RAW} LIMIT 1").columns) == {
        "_row_id", *features(frame), "_partition", "_ingested_at"
    }  # the target never lands among the features

    # no new file: the run replaces both batches, adds none, duplicates nothing; a fresh
    # instance learns the batches from raw.batches
    third = ingest(spec, resources, dg.DagsterInstance.ephemeral())
    assert third.success
    again = rows(path, f"SELECT _partition, count(*) AS n FROM {RAW} GROUP BY 1 ORDER BY 1")
    assert again["n"].tolist() == [90, 88]
    assert rows(path, f"SELECT count(*) AS n FROM {RAW}")["n"][0] == len(frame)


def test_a_file_that_repeats_rows_quarantines_them_as_duplicate_ids(tmp_path):
    frame = wine_frame()
    spec = wine_spec(tmp_path)
    resources = default_resources(tmp_path / "data")
    instance = dg.DagsterInstance.ephemeral()
    write_batch(tmp_path, "part-1.csv", frame.iloc[:50])
    ingest(spec, resources, instance)
    write_batch(tmp_path, "part-2.csv", frame.iloc[40:100])  # 10 rows of batch 1 again
    run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], instance=instance,
               raise_on_error=False)
    path = resources["warehouse"].path
    quarantined = rows(path, "SELECT _partition, reason FROM raw.quarantine")
    assert len(quarantined) == 10 and (quarantined["_partition"] == 2).all()
    assert quarantined["reason"].str.contains("duplicate id _row_id").all()
    assert rows(path, f"SELECT count(*) AS n FROM {RAW} WHERE _partition = 2")["n"][0] == 50


def test_a_single_file_is_a_new_batch_only_when_it_has_new_rows(tmp_path):
    frame = wine_frame()
    write_batch(tmp_path, "all.csv", frame.iloc[:100])
    spec = wine_spec(tmp_path, path="incoming/all.csv")
    resources = default_resources(tmp_path / "data")
    instance = dg.DagsterInstance.ephemeral()
    ingest(spec, resources, instance)
    ingest(spec, resources, instance)  # nothing new: the batch is replaced, none added
    assert instance.get_dynamic_partitions(batches_name(spec)) == ["batch-00001"]
    write_batch(tmp_path, "all.csv", frame)  # the export grew by 78 rows
    ingest(spec, resources, instance)
    assert instance.get_dynamic_partitions(batches_name(spec)) == ["batch-00001", "batch-00002"]
    counts = rows(resources["warehouse"].path, f"SELECT _partition, count(*) AS n FROM {RAW} GROUP BY 1 ORDER BY 1")
    assert counts["n"].tolist() == [100, 78]


def test_the_sensor_adds_a_batch_for_each_new_file(tmp_path):
    frame = wine_frame()
    spec = wine_spec(tmp_path)
    resources = default_resources(tmp_path / "data")
    instance = dg.DagsterInstance.ephemeral()
    write_batch(tmp_path, "part-1.csv", frame.iloc[:90])
    ingest(spec, resources, instance)
    defs = build_definitions(spec, resources)  # the stage wires the sensor for a glob without timestamp
    sensor = defs.get_sensor_def(NEW_FILES_SENSOR)
    context = dg.build_sensor_context(instance=instance, definitions=defs, resources={"warehouse": resources["warehouse"]})
    assert sensor(context).skip_reason.skip_message.startswith("no new file")
    write_batch(tmp_path, "part-2.csv", frame.iloc[90:130])
    write_batch(tmp_path, "part-3.csv", frame.iloc[130:])
    data = sensor(context)  # the daemon adds the keys, then launches the runs
    assert [r.partition_key for r in data.run_requests] == ["batch-00002", "batch-00003"]
    [request] = data.dynamic_partitions_requests
    assert list(request.partition_keys) == ["batch-00002", "batch-00003"]


@pytest.mark.parametrize("cadence,first,count,last_end", [
    ("weekly", "2026-01-07", 4, "2026-02-04"), ("monthly", "2026-01-07", 1, "2026-02-07"),
])
def test_weekly_and_monthly_windows_start_on_the_start_date(tmp_path, cadence, first, count, last_end):
    from mlinfra_assets.warehouse.partitions import partitions_for, window_for

    spec = wine_spec(tmp_path, source={"kind": "csv", "path": "x.csv", "name": "wine", "cadence": cadence,
                                       "start_date": first, "end_date": "2026-02-07"},
                     timestamp_column="ts")
    keys_ = partitions_for(spec).get_partition_keys()
    assert keys_[0] == first and len(keys_) == count
    window = window_for(spec, keys_)
    assert (str(window.start), str(window.end)) == (first, last_end)
