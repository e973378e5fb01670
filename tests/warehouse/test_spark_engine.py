"""warehouse.engine: spark gives the tables the DuckDB engine gives: the same rows land, the same rows
are quarantined with the same reasons, the same label matrix; DuckDB reads them for everyone else."""

from pathlib import Path

import duckdb
import pytest

from mlinfra_assets import keys, lake
from mlinfra_assets.query import QueryFailed, run_query
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse import RAW_SUITE_CHECK
from mlinfra_assets.warehouse.partitions import partitions_for
from tests.conftest import small_spec

pytestmark = pytest.mark.integration  # the session's Spark (tests/conftest.py)
ROWS = 3000
RAW = "SELECT * EXCLUDE (_ingested_at) FROM raw.transactions ORDER BY txn_id, ts"
QUARANTINE = "SELECT source_table, _partition, row_id, reason FROM raw.quarantine ORDER BY row_id, reason"
RECORDS = "SELECT row_id, reason, CAST(record AS VARCHAR) FROM raw.quarantine ORDER BY row_id, reason"


def spec_for(engine: str) -> DatasetSpec:
    return small_spec(ROWS, warehouse={"engine": engine})


def spoil(path: str) -> None:
    """Rows each engine must quarantine alike: out of range, unknown category, NaN where a value is
    required, no timestamp, a timestamp that is no time (the column as text), an id repeated
    within a day."""
    con = duckdb.connect(path)
    con.execute("UPDATE source.transactions SET amount = -1 WHERE txn_id % 97 = 0")
    con.execute("UPDATE source.transactions SET channel = 'pigeon' WHERE txn_id % 89 = 0")
    con.execute("UPDATE source.transactions SET amount = 'NaN' WHERE txn_id % 83 = 0")
    con.execute("UPDATE source.transactions SET ts = NULL WHERE txn_id % 211 = 0")
    # the timestamp as text, as a loaded CSV keeps it: one value no engine can read
    con.execute("ALTER TABLE source.transactions ALTER ts TYPE VARCHAR")
    con.execute("UPDATE source.transactions SET ts = 'the 5th at noon' WHERE txn_id % 199 = 0")
    con.execute("UPDATE source.transactions AS s SET txn_id = txn_id - 1 WHERE txn_id % 301 = 0 AND "
                "(SELECT ts::DATE FROM source.transactions p WHERE p.txn_id = s.txn_id - 1) = ts::DATE")
    con.close()


def repeat_a_landed_id(path: str) -> None:
    """A row of the last day takes the id of a row of the first day, which has landed already."""
    with duckdb.connect(path) as con:
        day = "TRY_CAST(ts AS TIMESTAMP)::DATE"
        con.execute(f"UPDATE source.transactions SET txn_id = 5 WHERE txn_id = (SELECT max(txn_id) FROM "
                    f"source.transactions WHERE {day} = (SELECT max({day}) FROM source.transactions))")


def ingest(engine: str, folder: Path) -> dict:
    spec = spec_for(engine)
    resources = default_resources(folder)
    run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE])
    spoil(resources["warehouse"].path)
    days = partitions_for(spec).get_partition_keys()
    ingest = [keys.raw_key(spec), keys.QUARANTINE]
    whole = run_assets(spec, resources, selection=ingest, raise_on_error=False)
    files = lake_files(spec, resources["warehouse"].path)
    repeat_a_landed_id(resources["warehouse"].path)
    # the last two days again: a re-run replaces them, and meets the ids the other days landed
    result = run_assets(spec, resources, selection=ingest, first=days[-2], last=days[-1], raise_on_error=False)
    assert run_assets(spec, resources, selection=[keys.LABEL_MATRIX]).success
    with duckdb.connect(resources["warehouse"].path, read_only=True) as con:
        tables = {name: con.execute(sql).fetchall() for name, sql in {
            "raw": RAW, "quarantine": QUARANTINE, "records": RECORDS,
            "matrix": "SELECT * FROM labeling.label_matrix ORDER BY row_id",
            "raw_types": "DESCRIBE raw.transactions", "quarantine_types": "DESCRIBE raw.quarantine",
            "matrix_types": "DESCRIBE labeling.label_matrix"}.items()}
    check = result.get_asset_check_evaluations()[0]
    assert whole.get_asset_check_evaluations()[0].passed == check.passed
    raw_meta = next(m.materialization.metadata for m in result.get_asset_materialization_events()
                    if m.materialization.asset_key == keys.raw_key(spec))
    return {"tables": tables, "check": check, "meta": raw_meta, "resources": resources, "spec": spec,
            "files_before_rerun": files}


def lake_files(spec: DatasetSpec, path: str) -> list[str]:
    with duckdb.connect(path, read_only=True) as con:
        return lake.current_files(con, lake.lake_root(spec, path), "raw.transactions")


@pytest.fixture(scope="module")
def engines(tmp_path_factory, spark) -> dict:
    root = tmp_path_factory.mktemp("engines")
    return {engine: ingest(engine, root / engine) for engine in ("duckdb", "spark")}


def test_spark_lands_and_quarantines_what_duckdb_does(engines):
    duck, spark = engines["duckdb"], engines["spark"]
    for name in ("raw", "quarantine", "raw_types", "quarantine_types"):
        assert spark["tables"][name] == duck["tables"][name], name
    # each quarantined row's record: the same keys and values (a missing value is null on both)
    records = {engine: sorted((record(r) for r in engines[engine]["tables"]["records"]), key=repr) for engine in engines}
    assert records["spark"] == records["duckdb"]
    assert any(None in record(r)[2].values() for r in duck["tables"]["records"])
    reasons = {r[3] for r in duck["tables"]["quarantine"]}
    assert any("expect_column_values_to_be_between(amount)" in r for r in reasons)
    assert any("expect_column_values_to_not_be_null(amount)" in r for r in reasons)  # NaN counts as missing
    assert any("expect_column_values_to_be_in_set(channel)" in r for r in reasons)
    assert any("expect_column_values_to_be_unique(txn_id)" in r for r in reasons)
    assert any(r.startswith("duplicate id txn_id") for r in reasons)
    assert any(r.startswith("timestamp ts is missing") for r in reasons)
    assert any("type(ts): the 5th at noon" in r for r in reasons)
    # the suite's verdict, expectation by expectation
    assert spark["check"].check_name == RAW_SUITE_CHECK
    assert spark["check"].passed == duck["check"].passed
    assert (spark["check"].metadata["failed_expectations"].value
            == duck["check"].metadata["failed_expectations"].value != [])
    assert spark["meta"]["engine"].value == "spark" and spark["meta"]["great_expectations_sampled_rows"].value > 0
    for figure in ("rows_in_window", "rows_landed", "rows_quarantined", "rows_outside_partitions"):
        assert spark["meta"][figure].value == duck["meta"][figure].value, figure


def failure_messages(result) -> list[str]:  # noqa: ANN001 - a Dagster ExecuteInProcessResult
    """The failed step's error and its causes, outermost first."""
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error, messages = failure.event_specific_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return messages


def record(row: tuple) -> tuple:
    """(row_id, reason, the record's values)."""
    import json

    return row[0], row[1], json.loads(row[2])


def test_the_engines_refuse_each_other_s_data_folder(engines):
    """A data folder one engine wrote is refused by the other before it reads anything, naming
    warehouse.engine; the tables stay as they were."""
    for engine, other in (("duckdb", "spark"), ("spark", "duckdb")):
        resources, spec = engines[engine]["resources"], spec_for(other)
        result = run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], raise_on_error=False)
        assert not result.success
        messages = failure_messages(result)
        assert any(f"use a new data folder (--data-dir) for warehouse.engine {other}" in m for m in messages), messages
        with duckdb.connect(resources["warehouse"].path, read_only=True) as con:
            assert con.execute(RAW).fetchall() == engines[engine]["tables"]["raw"]


def test_spark_label_matrix_is_duckdbs(engines):
    assert engines["spark"]["tables"]["matrix"] == engines["duckdb"]["tables"]["matrix"]
    assert engines["spark"]["tables"]["matrix_types"] == engines["duckdb"]["tables"]["matrix_types"]


def test_a_spark_rerun_replaces_and_analysts_read_the_lake(engines):
    spark = engines["spark"]
    spec, path = spark["spec"], spark["resources"]["warehouse"].path
    root = lake.lake_root(spec, path)
    with duckdb.connect(path, read_only=True) as con:
        files = lake.current_files(con, root, spec.raw_table)
        partitions = con.execute("SELECT count(DISTINCT _partition) FROM raw.transactions").fetchall()[0][0]
    # one file per partition: the re-run replaced the last two days' files and kept the others
    assert len(files) == partitions == len(spark["files_before_rerun"])
    kept = set(files) & set(spark["files_before_rerun"])
    assert len(kept) == partitions - 2
    on_disk = sorted(str(p) for p in lake.table_dir(root, spec.raw_table).glob("_pkey=*/*.parquet"))
    assert on_disk == sorted(files)  # nothing left of the replaced version or of the staging
    assert not any((root / lake.STAGING).iterdir())
    # `mlinfra query` (no file access) still reads the lake's tables, and only them
    assert run_query(path, "SELECT count(*) AS n FROM raw.transactions")["n"][0] == len(spark["tables"]["raw"])
    with pytest.raises(QueryFailed, match="no files"):
        run_query(path, f"SELECT * FROM read_parquet('{root.parent / 'mlflow.db'}')")


def test_a_broken_parquet_file_is_named_and_nothing_lands(tmp_path, spark):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlinfra_assets.demo import generator as demo

    folder = tmp_path / "drop"
    folder.mkdir()
    demo_spec = small_spec(2000)
    rows = pa.Table.from_pandas(demo.generate(demo_spec, 2000).transactions, preserve_index=False)
    pq.write_table(rows.slice(0, 1000), folder / "a.parquet")
    pq.write_table(rows.slice(1000), folder / "b.parquet")
    (folder / "c.parquet").write_bytes(b"PAR1 not really a parquet file")
    source = demo_spec.source.model_dump() | {"kind": "parquet", "path": str(folder / "*.parquet"), "table": None}
    spec = small_spec(2000, warehouse={"engine": "spark"}, source=source, demo=None, gold=None,
                      annotator={"simulated": False})
    resources = default_resources(tmp_path / "data")
    result = run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], raise_on_error=False)
    assert not result.success
    messages = failure_messages(result)
    assert any(f"source {folder / '*.parquet'} cannot be read: {folder / 'c.parquet'}" in m for m in messages), messages
    with duckdb.connect(resources["warehouse"].path, read_only=True) as con:
        assert lake.current_files(con, lake.lake_root(spec, resources["warehouse"].path), spec.raw_table) == []


def test_the_great_expectations_sample_takes_a_few_copies_of_a_repeated_id(spark):
    """One id repeated 500 times: Spark and GX flag every copy alike, and the sample carries
    `COPIES` of them to the driver, not 500."""
    import pandas as pd

    from mlinfra_assets.demo import generator as demo
    from mlinfra_assets.warehouse import ingest_spark

    spec = spec_for("spark")
    rows = demo.generate(spec, 3000).transactions[spec.source_columns].copy()
    rows.loc[:499, spec.id_column] = 7
    repeated = rows[spec.id_column] == 7
    rows[ingest_spark.EXPECT] = pd.Series("expect_column_values_to_be_unique(txn_id)", index=rows.index).where(repeated)
    spark.createDataFrame(rows).createOrReplaceTempView("_mlinfra_verdict")
    try:
        disagreements, sampled = ingest_spark.cross_check(spark, spec, len(rows), int(repeated.sum()))
    finally:
        spark.catalog.dropTempView("_mlinfra_verdict")
    assert disagreements == []
    unique = len(rows) - int(repeated.sum())
    assert 2 <= ingest_spark.COPIES <= 5 and sampled <= unique * 0.45 + 5  # ~a third of 2,500 + 3, not + 500


def test_a_table_it_has_never_seen_lands_alike_on_both_engines(tmp_path, spark):
    """The own-data matrix's hourly Parquet file (scikit-learn's breast cancer with a patient id
    and a visit time, written by pandas: nanosecond timestamps, which Spark reads only as their
    count) from `mlinfra init`'s draft: the same raw rows, types and label matrix on both engines."""
    import yaml

    from mlinfra_assets.init_spec import draft
    from mlinfra_assets.spec import load_spec
    from tests.own_data.datasets import CASES

    case = CASES["visits"](tmp_path)
    args = dict(zip(case.init_args[::2], case.init_args[1::2], strict=True))
    made = draft(str(case.data), args["--target"], args.get("--id"), args.get("--timestamp"), data_dir=tmp_path)
    got = {}
    for engine in ("duckdb", "spark"):
        folder = tmp_path / engine
        folder.mkdir()
        (folder / "lfs.py").write_text(case.lfs if case.lfs is not None else made.lfs)
        (folder / "spec.yaml").write_text(yaml.safe_dump(made.spec | {"warehouse": {"engine": engine}}, sort_keys=False))
        spec = load_spec(folder / "spec.yaml")
        resources = default_resources(folder / "data")
        assert run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE, keys.LABEL_MATRIX]).success
        with duckdb.connect(resources["warehouse"].path, read_only=True) as con:
            got[engine] = {sql: con.execute(sql).fetchall() for sql in (
                f"SELECT * EXCLUDE (_ingested_at) FROM {spec.raw_table} ORDER BY {spec.id_column}",
                f"DESCRIBE {spec.raw_table}", "SELECT count(*) FROM raw.quarantine",
                "SELECT * FROM labeling.label_matrix ORDER BY row_id")}
    assert got["spark"] == got["duckdb"]
    raw = next(iter(got["spark"].values()))
    assert len(raw) == 569 and len({r[-1] for r in raw}) > 24  # every row, over the file's hourly partitions
