"""Drift without a timestamp: each batch vs the training reference without it ("no batch to
compare yet" for a lone batch), 3-class prediction drift and the realized macro-F1."""

import dagster as dg
import duckdb
import numpy as np
import pytest

from mlinfra_assets import keys
from mlinfra_assets.monitoring.assets import NO_BATCH
from mlinfra_assets.resources import Warehouse, default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.stage import SHOWN
from mlinfra_assets.training.metrics import macro_f1
from mlinfra_assets.warehouse.source import source_select
from tests.monitoring.conftest import fixture_model, register_champion
from tests.warehouse.wine import CLASSES, features, wine_frame, wine_spec, write_batch

INGEST = [("raw", "wine"), ("raw", "quarantine")]


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    root = tmp_path_factory.mktemp("wine")
    frame, spec = wine_frame(), wine_spec(root)
    resources = default_resources(root / "data")
    instance = dg.DagsterInstance.ephemeral()
    write_batch(root, "part-1.csv", frame.iloc[:90])
    run_assets(spec, resources, selection=[dg.AssetKey(list(k)) for k in INGEST], instance=instance)
    con = duckdb.connect(resources["warehouse"].path)  # the champion was trained on batch 1
    con.execute("CREATE SCHEMA training")
    con.execute(
        f"CREATE TABLE training.training_set AS SELECT _row_id, {', '.join(features(frame))}, "
        "0 AS _label, 1.0 AS _weight, 'gold' AS _source FROM raw.wine"
    )
    con.close()
    return root, frame, spec, resources, instance


def report_rows(resources):
    return Warehouse(path=resources["warehouse"].path).query_df(
        "SELECT * FROM monitoring.drift_report ORDER BY _partition, kind, feature"
    )


def test_a_lone_batch_has_no_batch_to_compare(wine):
    _, _, spec, resources, instance = wine
    result = run_assets(spec, resources, selection=[keys.DRIFT_REPORT], instance=instance)
    meta = result.asset_materializations_for_node("monitoring__drift_report")[-1].metadata
    assert meta["not_compared"].value == ["batch-00001"]
    assert meta["drift_detected"].value is False and meta["compared_partitions"].value == 0
    for figure in ("max_psi", "drifted_share", "drifted_features", "reference_rows", "partitions"):
        assert meta[figure].value.startswith(NO_BATCH), figure  # a reason, never a row of zeros
    assert report_rows(resources).empty


def test_the_next_batch_is_compared_with_the_training_reference(wine):
    root, frame, spec, resources, instance = wine
    second = frame.iloc[90:].copy()
    second["alcohol"] += 2.0  # the new batch's wines are stronger
    write_batch(root, "part-2.csv", second)
    run_assets(spec, resources, selection=[dg.AssetKey(list(k)) for k in INGEST], instance=instance)
    path = resources["warehouse"].path
    version = register_champion(resources, spec, fixture_model(spec, path))
    con = duckdb.connect(path)  # annotators labeled batch 2's rows with the truth
    sql, params = source_select(spec)
    con.execute("CREATE SCHEMA IF NOT EXISTS labeling")
    con.execute(
        f"CREATE TABLE labeling.gold_labels AS SELECT _row_id AS row_id, "
        f"list_position({CLASSES}, target) - 1 AS label FROM {sql} AS s "
        "WHERE _row_id IN (SELECT _row_id FROM raw.wine WHERE _partition = 2)",
        params,
    )
    con.close()
    result = run_assets(spec, resources, selection=[keys.PREDICTIONS, keys.DRIFT_REPORT], instance=instance)
    meta = result.asset_materializations_for_node("monitoring__drift_report")[-1].metadata
    table = report_rows(resources)
    assert set(table["_partition"]) == {2}  # batch 1 has no other batch in the reference
    assert meta["not_compared"].value == ["batch-00001"] and meta["compared_partitions"].value == 1
    features_ = table[table["kind"] == "numeric"].set_index("feature")
    assert (features_["reference_rows"] == 90).all() and (features_["current_rows"] == 88).all()
    assert features_.loc["alcohol", "drifted"] and features_.loc["alcohol", "psi"] > spec.thresholds.psi_alert
    assert features_["ks_stat"].idxmax() == "alcohol" and not features_.drop(index="alcohol")["drifted"].any()
    # 3 classes: the prediction drift is the confidence and the predicted class shares
    prediction = table[table["kind"] == "prediction"]
    assert sorted(prediction["feature"]) == ["_confidence", "_predicted_class"]
    assert prediction["psi"].notna().all() and meta["prediction_model_version"].value == version
    # the realized figure is the spec's metric, macro-F1, on the labeled rows
    [realized] = table[table["kind"] == "performance"].itertuples()
    preds = Warehouse(path=path).query_df(
        "SELECT p._prediction, g.label FROM monitoring.predictions p "
        "JOIN labeling.gold_labels g ON g.row_id = p._row_id"
    )
    assert realized.feature == "macro_f1" and realized.labeled_rows == len(preds) == 88
    expected = macro_f1(preds["label"].to_numpy(), preds["_prediction"].to_numpy(), 3)
    assert realized.realized_metric == pytest.approx(expected) and meta["realized_metric"].value == pytest.approx(expected, rel=SHOWN)
    shares = result.asset_materializations_for_node("monitoring__predictions")[-1].metadata["predicted_shares"].value
    assert set(shares) == set(CLASSES) and np.isclose(sum(shares.values()), 1.0)
