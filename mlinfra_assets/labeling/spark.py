"""Run the SQL labeling functions on Spark: the same compiled query, Spark SQL dialect.

On a cluster, `spark-submit` this file with the package shipped alongside (see
docs/weak_supervision.md):

    spark-submit --master yarn --py-files mlinfra.zip mlinfra_assets/labeling/spark.py \\
        --input s3://bucket/raw/transactions/ --output s3://bucket/labeling/label_matrix/

It reads the raw rows (parquet), writes the label matrix (parquet: `row_id` and one
SMALLINT per LF) that DuckDB then loads with `read_parquet`. Only SQL-form LFs run here;
an LF without one is named in the error.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from typing import Any

from mlinfra_assets.labeling import sql_lfs
from mlinfra_assets.labeling.lfs import LabelingFunctionError, LFSet, load_lfs
from mlinfra_assets.spec import DatasetSpec, load_spec

VIEW = "mlinfra_raw"
FLOAT_TYPES = {"double", "float"}


def spark_source(df: Any, spec: DatasetSpec, view: str = VIEW) -> sql_lfs.Source:  # noqa: ANN401 - pyspark DataFrame
    """Register `df` (the raw rows) as a temporary view and describe it for the compiler."""
    types = dict(df.dtypes)
    columns = [c for c in [spec.timestamp_column, *spec.feature_columns] if c]
    missing = [c for c in [spec.id_column, *columns] if c not in types]
    if missing:
        raise ValueError(f"the Spark input has no column(s) {missing} named by the spec")
    df.createOrReplaceTempView(view)
    return sql_lfs.Source(view, spec.id_column, columns, {c for c in columns if types[c] in FLOAT_TYPES}, "spark")


def label_matrix(spark: Any, df: Any, spec: DatasetSpec, lf_set: LFSet) -> Any:  # noqa: ANN401
    """The label matrix of `df` as a (lazy) Spark DataFrame: `row_id` and one SMALLINT per LF.

    Raises
    ------
    LabelingFunctionError
        When an LF has no SQL form, or its expression does not compile on Spark.
    """
    missing = [lf.name for lf in lf_set.lfs if lf.sql is None]
    if missing:
        raise LabelingFunctionError(
            f"labeling function(s) {missing} in {lf_set.module} have no SQL form: Spark runs SQL "
            "LFs only; add sql_labeling_function(...) forms or label on DuckDB"
        )
    source = spark_source(df, spec)
    sql_lfs.check_expressions(
        lf_set.lfs, source, lambda q: [f.dataType.simpleString() for f in spark.sql(q).schema.fields]
    )
    return spark.sql(sql_lfs.checked_sql(lf_set.lfs, source, spec.n_classes))


def run_checked(action: Callable[[], Any], spark: Any, spec: DatasetSpec, lf_set: LFSet) -> Any:  # noqa: ANN401
    """Run a Spark action on the label matrix; a vote out of range names the LF and its row."""
    try:
        return action()
    except Exception as exc:
        if sql_lfs.OUT_OF_RANGE not in str(exc):
            raise
        source = spark_source(spark.table(VIEW), spec)

        def first_row(query: str) -> tuple | None:
            row = spark.sql(query).first()
            return None if row is None else tuple(row)

        raise sql_lfs.first_bad_vote(lf_set.lfs, source, spec.n_classes, first_row) from None


def build_lake_matrix(spark: Any, con: Any, spec: DatasetSpec, lf_set: LFSet, root: Any) -> int:  # noqa: ANN401
    """`warehouse.engine: spark`: the label matrix of the lake's raw table, written to the lake
    and committed as `labeling.label_matrix` (a DuckDB view, as `build_label_matrix` makes a
    table on DuckDB); returns its rows. A vote out of range names the LF, the previous matrix stays."""
    from mlinfra_assets import lake
    from mlinfra_assets.labeling.matrix import TABLE

    lake.refuse_other_engine(con, "spark", [TABLE])
    files = lake.current_files(con, root, spec.raw_table)
    if not files:
        raise LabelingFunctionError(f"{spec.raw_table} has no rows in the lake: materialize the raw partitions first")
    matrix = label_matrix(spark, spark.read.parquet(*files), spec, lf_set)
    stage = lake.new_stage(root)
    try:
        run_checked(lambda: matrix.write.parquet(str(stage / f"{lake.PKEY}=all")), spark, spec, lf_set)
        lake.write_schema(matrix.schema, stage)
        lake.commit(con, root, [lake.Write(TABLE, stage, ["all"], ["row_id", *(f'"{n}"' for n in lf_set.names)])])
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # a failed write's stage (a commit removes its own)
        spark.catalog.dropTempView(VIEW)
    return int(con.execute(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0])


def main(argv: list[str] | None = None) -> None:
    """spark-submit entry point: label parquet rows, write the label matrix as parquet."""
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="parquet path of the raw rows")
    parser.add_argument("--output", required=True, help="parquet path for the label matrix")
    parser.add_argument("--spec", default=None, help="dataset spec (default: MLINFRA_SPEC or the demo's)")
    args = parser.parse_args(argv)
    spec = load_spec(args.spec)
    lf_set = load_lfs(spec)
    spark = SparkSession.builder.appName("mlinfra-label-matrix").getOrCreate()
    matrix = label_matrix(spark, spark.read.parquet(args.input), spec, lf_set)
    run_checked(lambda: matrix.write.mode("overwrite").parquet(args.output), spark, spec, lf_set)


if __name__ == "__main__":
    main()
