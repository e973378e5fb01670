"""The lake's commit: readers see the previous files until the commit, a step that dies before it
leaves the previous version, the next commit removes what the dead one left; the Spark engine's
spec settings are checked at load."""

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlinfra_assets import lake
from mlinfra_assets.spec import DatasetSpec
from tests.conftest import small_spec

TABLE = "raw.things"
SCHEMA = pa.schema([("id", pa.int64()), ("_partition", pa.string())])


def stage(root: Path, rows: dict[str, list[int]]) -> Path:
    """Parquet files as Spark stages them: one folder per partition key, plus the schema file."""
    folder = lake.new_stage(root)
    for key, ids in rows.items():
        part = folder / f"{lake.PKEY}={key}"
        part.mkdir(parents=True)
        pq.write_table(pa.table({"id": ids, "_partition": [key] * len(ids)}, schema=SCHEMA), part / "part-0.parquet")
    (folder / "_schema").mkdir(parents=True)
    pq.write_table(SCHEMA.empty_table(), folder / "_schema" / "schema.parquet")
    return folder


def rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(f"SELECT * FROM {TABLE} ORDER BY id").fetchall()


def test_commit_replaces_partitions_atomically(tmp_path, monkeypatch):
    root = tmp_path / "lake"
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    lake.commit(con, root, TABLE, stage(root, {"a": [1, 2], "b": [3]}), ["a", "b"], ["id", "_partition"])
    first = rows(con)
    assert first == [(1, "a"), (2, "a"), (3, "b")]
    # a commit that dies inside its transaction: the previous version stays, files and view
    before = lake.current_files(con, TABLE)

    def dies(*args: object) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(lake, "_replace_view", dies)
    with pytest.raises(RuntimeError, match="killed"):
        lake.commit(con, root, TABLE, stage(root, {"a": [10]}), ["a"], ["id", "_partition"])
    monkeypatch.undo()
    assert rows(con) == first and lake.current_files(con, TABLE) == before
    assert all(Path(f).exists() for f in before)
    orphans = [p for p in lake.table_dir(root, TABLE).glob("*/*.parquet") if str(p) not in before]
    assert orphans  # the dead commit's moved files
    # the next commit replaces `a` only, keeps `b`, and removes the orphans and the replaced files
    count = lake.commit(con, root, TABLE, stage(root, {"a": [11, 12]}), ["a"], ["id", "_partition"])
    assert rows(con) == [(3, "b"), (11, "a"), (12, "a")] and count == 2
    on_disk = sorted(str(p) for p in lake.table_dir(root, TABLE).glob(f"{lake.PKEY}=*/*.parquet"))
    assert on_disk == lake.current_files(con, TABLE)
    # a partition written with no rows becomes empty; the table keeps its columns
    lake.commit(con, root, TABLE, stage(root, {}), ["a", "b"], ["id", "_partition"])
    assert rows(con) == [] and [c[0] for c in con.execute(f"DESCRIBE {TABLE}").fetchall()] == ["id", "_partition"]
    assert not any((root / lake.STAGING).iterdir())


def test_a_duckdb_table_is_never_replaced_by_a_lake_view(tmp_path):
    root = tmp_path / "lake"
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(f"CREATE SCHEMA raw; CREATE TABLE {TABLE} AS SELECT 1 AS id")
    with pytest.raises(lake.LakeError, match="DuckDB table .* use a new data folder"):
        lake.commit(con, root, TABLE, stage(root, {"a": [1]}), ["a"], ["id", "_partition"])
    assert con.execute(f"SELECT * FROM {TABLE}").fetchall() == [(1,)]


SOURCE = small_spec().source.model_dump()


@pytest.mark.parametrize("change,named", [
    ({"source": SOURCE | {"kind": "csv", "path": "x.csv", "table": None}}, "not CSV"),
    ({"timestamp_column": None, "source": SOURCE | {"start_date": None, "end_date": None}},
     "needs a timestamp_column"),
    ({"id_column": None}, "needs an id_column"),
])
def test_the_spark_engine_refuses_what_it_cannot_read(change, named):
    data = small_spec().model_dump() | {"warehouse": {"engine": "spark"}} | change
    with pytest.raises(ValueError, match=f"warehouse.engine spark .*{named}"):
        DatasetSpec.model_validate(data)
