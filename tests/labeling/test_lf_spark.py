"""The SQL LFs on Spark (local mode) give the label matrix DuckDB gives; errors name the LF."""

import math
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlinfra_assets.labeling.forms import LF, sql_labeling_function
from mlinfra_assets.labeling.lfs import LabelingFunctionError, LFSet, load_lfs
from mlinfra_assets.labeling.matrix import build_label_matrix
from mlinfra_assets.resources import Warehouse
from tests.conftest import small_spec

pytestmark = pytest.mark.integration  # the session's Spark (tests/conftest.py): a JVM start, ~15 s
SPEC = small_spec()
LFS = load_lfs(SPEC)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """The demo's rows plus edge rows (NULL, NaN, inf, empty strings), in DuckDB and as parquet."""
    from mlinfra_assets.demo import generator as demo

    root = tmp_path_factory.mktemp("spark")
    table = pa.Table.from_pandas(demo.generate(SPEC, 3000).transactions, preserve_index=False)
    n = 5
    edge = {c: pa.nulls(n, table.schema.field(c).type) for c in table.column_names}
    edge["txn_id"] = pa.array(range(10**9, 10**9 + n), pa.int64())
    edge["ts"] = pa.array([datetime(2026, 1, 2)] * n, table.schema.field("ts").type)
    edge["amount_vs_avg"] = pa.array([math.nan, math.inf, -math.inf, None, 10.0], pa.float64(), from_pandas=False)
    edge["txn_count_1h"] = pa.array([None, 3, 2**62, -1, 0], pa.int64())
    edge["channel"] = pa.array(["", "online", None, "pos", " "], pa.string())
    table = pa.concat_tables([table, pa.table(edge, schema=table.schema)])
    warehouse = Warehouse(path=str(root / "w.duckdb"))
    with warehouse.connect() as con:
        con.register("t", table)
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.transactions AS SELECT * FROM t")
    pq.write_table(table, root / "raw.parquet")
    return warehouse, str(root / "raw.parquet")


def test_spark_label_matrix_equals_duckdb(spark, raw, tmp_path):
    from mlinfra_assets.labeling import spark as on_spark

    warehouse, parquet = raw
    build_label_matrix(warehouse, SPEC, LFS, form="sql")
    expected = warehouse.query_df("SELECT * FROM labeling.label_matrix ORDER BY row_id")
    out = tmp_path / "matrix.parquet"
    on_spark.main(["--input", parquet, "--output", str(out)])  # the spark-submit entry point
    got = pq.read_table(out).to_pandas().sort_values("row_id").reset_index(drop=True)
    assert list(got.columns) == list(expected.columns) and str(got[LFS.names[0]].dtype) == "int16"
    assert got.equals(expected)
    assert (expected[LFS.names] != -1).any().all()


def test_spark_errors_name_the_lf(spark, raw):
    from mlinfra_assets.labeling import spark as on_spark

    df = spark.read.parquet(raw[1])
    typo = LFSet("t", [LF("typo", sql=sql_labeling_function("typo", "CASE WHEN amount_vs_avgg > 1 THEN 1 END"))], None)
    with pytest.raises(LabelingFunctionError, match="'typo' does not compile on spark"):
        on_spark.label_matrix(spark, df, SPEC, typo)
    first = raw[0].scalar("SELECT min(txn_id) FROM raw.transactions WHERE txn_count_1h >= 2")
    two = LFSet("t", [LF("two", sql=sql_labeling_function("two", "CASE WHEN txn_count_1h >= 2 THEN 2 END"))], None)
    matrix = on_spark.label_matrix(spark, df, SPEC, two)
    with pytest.raises(LabelingFunctionError, match=rf"'two' voted 2 on row_id {first} \(its first offending row\)"):
        on_spark.run_checked(matrix.collect, spark, SPEC, two)
    rowwise_only = LFSet("t", [LF("py", rowwise=object())], None)
    with pytest.raises(LabelingFunctionError, match=r"\['py'\] in t have no SQL form"):
        on_spark.label_matrix(spark, df, SPEC, rowwise_only)
