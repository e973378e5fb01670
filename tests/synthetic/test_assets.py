"""The synthetic stage in-process: fit and reuse, rebalancing, quality report and its blocking gate."""

import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.runner import run_assets
from mlinfra_assets.synthetic import QUALITY_CHECK
from tests.synthetic.conftest import FIT_ROWS, synthetic_spec

STAGE = [keys.SYNTHESIZER, keys.SYNTHETIC_ROWS, keys.SYNTHETIC_QUALITY]


def _metadata(result, key):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


@pytest.fixture(scope="module")
def first_run(upstream):
    result = run_assets(synthetic_spec(), upstream, selection=STAGE)
    return result


def test_synthesizer_fits_once_then_is_reused(first_run, upstream):
    spec = synthetic_spec()
    fit = _metadata(first_run, keys.SYNTHESIZER)
    assert fit["refit"] is True and fit["reused"] is False
    assert 0 < fit["dagster/row_count"] <= FIT_ROWS
    assert fit["fit_rows_fraud"] == fit["fit_rows_legit"] > 100  # balanced: every fraud row
    again = run_assets(spec, upstream, selection=[keys.SYNTHESIZER])
    meta = _metadata(again, keys.SYNTHESIZER)
    assert meta["reused"] is True and meta["version"] == fit["version"] and meta["fit_seconds"] == 0


def test_minority_reaches_the_target_share(first_run, upstream):
    spec = synthetic_spec()
    rows = _metadata(first_run, keys.SYNTHETIC_ROWS)
    assert rows["rows_fraud"] > 0 and rows["rows_legit"] == 0
    assert rows["share_after_fraud"] == pytest.approx(spec.synthetic.target_share, abs=0.005)
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    table = con.execute("SELECT * FROM synthetic.synthetic_rows").df()
    version = _metadata(first_run, keys.SYNTHESIZER)["version"]
    con.close()
    assert list(table.columns) == ["synthetic_id", *spec.feature_columns, "label", "synthesizer_version"]
    assert len(table) == rows["dagster/row_count"] and table.synthetic_id.is_unique
    assert set(table.label) == {spec.classes.index("fraud")} and set(table.synthesizer_version) == {version}
    for column, feature in spec.features.numeric.items():
        assert table[column].min() >= feature.min, column
        if feature.max is not None:
            assert table[column].max() <= feature.max, column
    for column, feature in spec.features.categorical.items():
        assert set(table[column]) <= set(feature.values), column


def test_quality_is_recorded_and_the_gate_passes(first_run, upstream):
    quality = _metadata(first_run, keys.SYNTHETIC_QUALITY)
    assert 0.6 < quality["overall_quality"] <= 1.0
    assert quality["data_validity"] == 1.0 and quality["exact_matches"] == 0
    [check] = first_run.get_asset_check_evaluations()
    assert check.check_name == QUALITY_CHECK and check.passed
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    scores = con.execute("SELECT * FROM synthetic.synthetic_quality").df()
    con.close()
    overall = scores.query("metric == 'quality' and property == 'Overall'").score
    assert overall.tolist() == [pytest.approx(quality["overall_quality"])]
    shapes = scores.query("property == 'Column Shapes' and column_name.notna()")
    assert set(shapes.column_name) == set(synthetic_spec().feature_columns)
    assert scores.query("metric != 'privacy'").score.between(0, 1).all()
    assert scores.query("property == 'Exact Matches'").score.tolist() == [0.0]


def test_gate_blocks_at_a_strict_threshold(first_run, upstream):
    strict = synthetic_spec(quality_threshold=0.999)
    result = run_assets(strict, upstream, selection=[keys.SYNTHETIC_QUALITY], raise_on_error=False)
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and "quality_threshold 0.999" in check.description


def test_gate_blocks_a_copy_of_a_real_row(first_run, upstream):
    spec = synthetic_spec()
    features = ", ".join(spec.feature_columns)
    version = _metadata(first_run, keys.SYNTHESIZER)["version"]
    con = duckdb.connect(upstream["warehouse"].path)
    con.execute(
        f"INSERT INTO synthetic.synthetic_rows SELECT 'copied', {features}, 1, ? "
        "FROM raw.transactions LIMIT 1",
        [version],
    )
    con.close()
    result = run_assets(spec, upstream, selection=[keys.SYNTHETIC_QUALITY], raise_on_error=False)
    [check] = result.get_asset_check_evaluations()
    assert not result.success and not check.passed
    assert check.description == "1 synthetic rows equal a real row on every feature"
