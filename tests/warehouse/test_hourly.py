"""An hourly-timestamp Parquet file (iris, string class names, an id column): hourly
partitions, `_partition` the hour's start (TIMESTAMP), and the drift report per hour."""

from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.partitions import partitions_for

START = datetime(2026, 3, 1)


def iris_spec(root) -> DatasetSpec:  # noqa: ANN001
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = [str(data.target_names[i]) for i in frame.pop("target")]
    frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    frame.insert(0, "event_id", range(1000, 1000 + len(frame)))
    frame.insert(1, "ts", [START + timedelta(minutes=9.5 * i) for i in range(len(frame))])  # ~24 hours
    frame.to_parquet(root / "events.parquet", index=False)
    (root / "lfs.py").write_text(
        "from mlinfra_assets.labeling.forms import sql_labeling_function\n"
        "tiny_petal = sql_labeling_function('tiny_petal', 'CASE WHEN petal_length < 2 THEN 0 END')\n"
    )
    spec = DatasetSpec.model_validate({
        "name": "iris",
        "source": {"kind": "parquet", "path": "events.parquet", "name": "iris", "cadence": "hourly",
                   "start_date": "2026-03-01", "end_date": "2026-03-02"},
        "id_column": "event_id",
        "timestamp_column": "ts",
        "features": {"numeric": ["sepal_length", "sepal_width", "petal_length", "petal_width"]},
        "classes": ["setosa", "versicolor", "virginica"],
        "labeling_functions": "lfs.py",
        "gold": {"column": "species"},
    })
    spec.spec_path = root / "spec.yaml"
    return spec


def test_hourly_partitions_from_a_parquet_file(tmp_path):
    spec = iris_spec(tmp_path)
    partition_keys = partitions_for(spec).get_partition_keys()
    assert len(partition_keys) == 24 and partition_keys[0] == "2026-03-01-00:00"
    resources = default_resources(tmp_path / "data")
    instance = dg.DagsterInstance.ephemeral()
    result = run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], instance=instance)
    assert result.success
    con = duckdb.connect(resources["warehouse"].path)
    raw = con.execute("SELECT event_id, ts, _partition FROM raw.iris").df()
    kind = con.execute("SELECT data_type FROM information_schema.columns "
                       "WHERE table_name = 'iris' AND column_name = '_partition'").fetchall()[0][0]
    assert kind == "TIMESTAMP" and len(raw) == 150
    assert (raw["_partition"] == raw["ts"].dt.floor("h")).all()
    assert raw["_partition"].nunique() == 24
    # the champion's training set: the first twelve hours; the report covers the last twelve
    con.execute("CREATE SCHEMA training")
    con.execute(
        "CREATE TABLE training.training_set AS SELECT CAST(event_id AS VARCHAR) AS _row_id, "
        "sepal_length, sepal_width, petal_length, petal_width, 'gold' AS _source "
        "FROM raw.iris WHERE _partition < TIMESTAMP '2026-03-01 12:00:00'"
    )
    con.close()
    report = run_assets(spec, resources, selection=[keys.DRIFT_REPORT], instance=instance,
                        first="2026-03-01-12:00", last="2026-03-01-23:00")
    meta = report.asset_materializations_for_node("monitoring__drift_report")[-1].metadata
    assert meta["window"].value == "2026-03-01-12:00 .. 2026-03-01-23:00"
    assert meta["compared_partitions"].value == 12 and meta["not_compared"].value == []
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    table = con.execute("SELECT _partition, feature, reference_rows FROM monitoring.drift_report").df()
    con.close()
    assert table["_partition"].nunique() == 12
    assert (table["reference_rows"] == (raw["_partition"] < pd.Timestamp("2026-03-01 12:00")).sum()).all()
