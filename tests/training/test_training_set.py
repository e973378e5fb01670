"""training/training_set: sources, weights, soft targets, holdout exclusion, data version, errors."""

import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.holdout import holdout_predicate
from mlinfra_assets.runner import run_assets
from mlinfra_assets.training import dataset
from tests.training.conftest import GOLD_ROWS, SYNTHETIC_ROWS, training_spec


def _query(resources: dict, sql: str) -> list[tuple]:
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_training_set_rows_weights_and_provenance(resources):
    spec = training_spec()
    result = run_assets(spec, resources, selection=[keys.TRAINING_SET])
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    per_source = dict(_query(resources, "SELECT _source, count(*) FROM training.training_set GROUP BY 1"))
    assert per_source["gold"] == GOLD_ROWS and per_source["synthetic"] == SYNTHETIC_ROWS
    # weak: labelled (not abstained), not gold, not holdout
    expected_weak = _query(resources, (
        "SELECT count(*) FROM labeling.weak_labels w WHERE w.label >= 0 "
        "AND w.row_id NOT IN (SELECT row_id FROM labeling.gold_labels) "
        f"AND NOT {holdout_predicate(spec, 'w.row_id')}"))[0][0]
    assert per_source["weak"] == expected_weak
    assert meta["dagster/row_count"].value == sum(per_source.values())
    assert meta["rows_weak"].value == expected_weak
    weights = dict(_query(resources, "SELECT _source, min(_weight) FROM training.training_set GROUP BY 1"))
    assert weights == pytest.approx(spec.training.weights)
    # soft targets sum to 1; gold and synthetic are one-hot of their label
    assert _query(resources, "SELECT max(abs(_prob_legit + _prob_fraud - 1)) FROM training.training_set")[0][0] < 1e-6
    assert _query(resources, (
        "SELECT count(*) FROM training.training_set WHERE _source <> 'weak' "
        "AND _prob_fraud <> CASE WHEN _label = 1 THEN 1.0 ELSE 0.0 END"))[0][0] == 0
    assert _query(resources, (
        "SELECT count(*) FROM training.training_set WHERE _source = 'synthetic' "
        "AND NOT starts_with(_row_id, 'syn-')"))[0][0] == 0
    # no holdout row is trained on
    assert _query(resources, (
        "SELECT count(*) FROM training.training_set WHERE _source <> 'synthetic' "
        f"AND {holdout_predicate(spec, '_row_id')}"))[0][0] == 0

    # re-materializing replaces (same rows, same data version); other weights, other version
    version = meta["data_version"].value
    again = run_assets(spec, resources, selection=[keys.TRAINING_SET])
    assert again.get_asset_materialization_events()[0].materialization.metadata["data_version"].value == version
    assert _query(resources, "SELECT count(*) FROM training.training_set")[0][0] == sum(per_source.values())
    heavier = training_spec(weights={"gold": 2.0, "weak": 0.5, "synthetic": 0.3})
    other = run_assets(heavier, resources, selection=[keys.TRAINING_SET])
    assert other.get_asset_materialization_events()[0].materialization.metadata["data_version"].value != version
    run_assets(spec, resources, selection=[keys.TRAINING_SET])


def test_missing_upstream_table_is_named():
    spec = training_spec()
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE TABLE raw.transactions (txn_id BIGINT)")
    con.execute("CREATE SCHEMA labeling; CREATE TABLE labeling.weak_labels (row_id BIGINT)")
    with pytest.raises(LookupError, match="labeling.gold_labels, synthetic.synthetic_rows"):
        dataset.build(con, spec)


def test_missing_source_weight_is_named():
    spec = training_spec(weights={"gold": 1.0, "weak": 0.5})
    with pytest.raises(ValueError, match=r"training.weights has no entry for \['synthetic'\]"):
        dataset.source_weights(spec)
