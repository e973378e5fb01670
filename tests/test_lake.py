"""The lake's commit: readers see the previous files until the commit, a step that dies before it
leaves the previous version, the next write removes what the dead one left, raw rows and their
quarantine commit together, a moved lake loses nothing; the engines never share a data folder;
the Spark engine's spec settings are checked at load."""

import shutil
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlinfra_assets import lake
from mlinfra_assets.resources import spark_config
from mlinfra_assets.spec import DatasetSpec
from tests.conftest import small_spec

TABLE = "raw.things"
OTHER = "raw.others"
SCHEMA = pa.schema([("id", pa.int64()), ("_partition", pa.string())])
COLUMNS = ["id", "_partition"]


def stage(root: Path, rows: dict[str, list[int]]) -> Path:
    """Parquet files as Spark stages them: one folder per partition key, plus the schema file."""
    folder = _fresh(root)
    for key, ids in rows.items():
        part = folder / f"{lake.PKEY}={key}"
        part.mkdir(parents=True)
        pq.write_table(pa.table({"id": ids, "_partition": [key] * len(ids)}, schema=SCHEMA), part / "part-0.parquet")
    (folder / "_schema").mkdir(parents=True)
    pq.write_table(SCHEMA.empty_table(), folder / "_schema" / "schema.parquet")
    return folder


def _fresh(root: Path) -> Path:
    """A staging folder beside others (new_stage would delete them: two writes of one commit)."""
    folder = root / lake.STAGING / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


def write(root: Path, rows: dict[str, list[int]], keys: list[str], table: str = TABLE) -> lake.Write:
    return lake.Write(table, stage(root, rows), keys, COLUMNS)


def rows(con: duckdb.DuckDBPyConnection, table: str = TABLE) -> list[tuple]:
    return con.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def on_disk(root: Path, table: str = TABLE) -> list[str]:
    return sorted(str(p) for p in lake.table_dir(root, table).glob(f"{lake.PKEY}=*/*.parquet"))


def test_commit_replaces_partitions_atomically(tmp_path, monkeypatch):
    root = tmp_path / "lake"
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    lake.commit(con, root, [write(root, {"a": [1, 2], "b": [3]}, ["a", "b"])])
    first = rows(con)
    assert first == [(1, "a"), (2, "a"), (3, "b")]
    # a commit that dies inside its transaction: the previous version stays, files and view
    before = lake.current_files(con, root, TABLE)

    def dies(*args: object) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(lake, "_replace_view", dies)
    with pytest.raises(RuntimeError, match="killed"):
        lake.commit(con, root, [write(root, {"a": [10]}, ["a"])])
    monkeypatch.undo()
    assert rows(con) == first and lake.current_files(con, root, TABLE) == before
    assert all(Path(f).exists() for f in before)
    orphans = [p for p in on_disk(root) if p not in before]
    assert orphans  # the dead commit's moved files
    # the next commit replaces `a` only, keeps `b`, and removes the orphans and the replaced files
    lake.commit(con, root, [write(root, {"a": [11, 12]}, ["a"])])
    assert rows(con) == [(3, "b"), (11, "a"), (12, "a")]
    assert on_disk(root) == lake.current_files(con, root, TABLE) and len(on_disk(root)) == 2
    # a partition written with no rows becomes empty; the table keeps its columns
    lake.commit(con, root, [write(root, {}, ["a", "b"])])
    assert rows(con) == [] and [c[0] for c in con.execute(f"DESCRIBE {TABLE}").fetchall()] == COLUMNS
    assert not any((root / lake.STAGING).iterdir())


def test_two_tables_commit_together_or_not_at_all(tmp_path, monkeypatch):
    """Raw rows and their quarantine: a commit that dies at the second table's view leaves both."""
    root = tmp_path / "lake"
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    lake.commit(con, root, [write(root, {"a": [1]}, ["a"]), write(root, {"a": [2]}, ["a"], OTHER)])
    real = lake._replace_view

    def second_dies(con, qualified, *args):  # noqa: ANN001, ANN202
        if qualified == OTHER:
            raise RuntimeError("killed")
        return real(con, qualified, *args)

    monkeypatch.setattr(lake, "_replace_view", second_dies)
    with pytest.raises(RuntimeError, match="killed"):
        lake.commit(con, root, [write(root, {"a": [10]}, ["a"]), write(root, {"a": [20]}, ["a"], OTHER)])
    monkeypatch.undo()
    assert rows(con) == [(1, "a")] and rows(con, OTHER) == [(2, "a")]
    lake.commit(con, root, [write(root, {"a": [10]}, ["a"]), write(root, {"a": [20]}, ["a"], OTHER)])
    assert rows(con) == [(10, "a")] and rows(con, OTHER) == [(20, "a")]
    assert len(on_disk(root)) == len(on_disk(root, OTHER)) == 1


def test_a_dead_step_s_staging_folder_goes_with_the_next_write(tmp_path):
    root = tmp_path / "lake"
    dead = lake.new_stage(root)
    (dead / f"{lake.PKEY}=a").mkdir()
    (dead / f"{lake.PKEY}=a" / "part-0.parquet").write_bytes(b"half a file")
    fresh = lake.new_stage(root)
    assert fresh.is_dir() and not any(fresh.iterdir())
    assert list((root / lake.STAGING).iterdir()) == [fresh]


def test_a_moved_lake_keeps_every_file_and_its_views_follow(tmp_path):
    old_root, new_root = tmp_path / "lake", tmp_path / "moved" / "lake"
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    lake.commit(con, old_root, [write(old_root, {"a": [1], "b": [2]}, ["a", "b"])])
    lake.commit(con, old_root, [write(old_root, {"a": [3]}, ["a"], OTHER)])
    new_root.parent.mkdir()
    shutil.move(old_root, new_root)  # the data folder moved (warehouse.lake now points here)
    lake.commit(con, new_root, [write(new_root, {"a": [5]}, ["a"])])
    assert rows(con) == [(2, "b"), (5, "a")]  # partition b's file was kept, not taken for an orphan
    assert rows(con, OTHER) == [(3, "a")]  # the other table's view reads the new root too
    assert len(on_disk(new_root)) == 2 and len(on_disk(new_root, OTHER)) == 1
    assert lake.allowed_directories(con) == sorted(
        str(lake.table_dir(new_root, t)) + "/" for t in (OTHER, TABLE))


def test_the_engines_never_share_a_data_folder(tmp_path):
    root = tmp_path / "lake"
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(f"CREATE SCHEMA raw; CREATE TABLE {TABLE} AS SELECT 1 AS id")
    with pytest.raises(lake.LakeError, match="DuckDB table .*use a new data folder .*engine spark"):
        lake.commit(con, root, [write(root, {"a": [1]}, ["a"])])
    assert con.execute(f"SELECT * FROM {TABLE}").fetchall() == [(1,)]
    assert not list(lake.table_dir(root, TABLE).glob("*/*.parquet"))  # refused before any file moved
    lake.commit(con, root, [write(root, {"a": [1]}, ["a"], OTHER)])
    with pytest.raises(lake.LakeError, match=f"{OTHER} is a view of the Spark engine's lake .*engine duckdb"):
        lake.refuse_other_engine(con, "duckdb", [TABLE, OTHER])
    lake.refuse_other_engine(con, "duckdb", [TABLE])  # a DuckDB table on the DuckDB engine
    lake.refuse_other_engine(con, "spark", [OTHER])


SOURCE = small_spec().source.model_dump()


@pytest.mark.parametrize("change,named", [
    ({"source": SOURCE | {"kind": "csv", "path": "x.csv", "table": None}}, "warehouse.engine spark .*not CSV"),
    ({"timestamp_column": None, "source": SOURCE | {"start_date": None, "end_date": None}},
     "warehouse.engine spark .*needs a timestamp_column"),
    ({"id_column": None}, "warehouse.engine spark .*needs an id_column"),
    ({"spark": {"conf": {"spark.sql.session.timeZone": "Europe/Paris"}}},
     "spark.conf.spark.sql.session.timeZone is 'Europe/Paris': the lake needs 'UTC'"),
])
def test_the_spark_engine_refuses_what_it_cannot_read(change, named):
    data = small_spec().model_dump() | {"warehouse": {"engine": "spark"}} | change
    with pytest.raises(ValueError, match=named):
        DatasetSpec.model_validate(data)


def test_a_local_session_binds_to_loopback_and_a_cluster_s_driver_is_reachable():
    local = spark_config(small_spec(warehouse={"engine": "spark"}))
    assert local["spark.driver.bindAddress"] == local["spark.driver.host"] == "127.0.0.1"
    cluster = spark_config(small_spec(warehouse={"engine": "spark"}, spark={
        "master": "spark://10.0.0.5:7077", "conf": {"spark.sql.session.timeZone": "UTC", "spark.executor.memory": "2g"}}))
    assert "spark.driver.host" not in cluster and "spark.driver.bindAddress" not in cluster
    assert cluster["spark.executor.memory"] == "2g" and cluster["spark.sql.session.timeZone"] == "UTC"
