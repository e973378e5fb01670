"""The synthetic stage in-process: fit and reuse, rebalancing, the quality/privacy/utility report, and
the gates that keep failed rows out of synthetic.synthetic_rows."""

import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.runner import run_assets
from mlinfra_assets.synthetic import QUALITY_CHECK, data, gates
from tests.synthetic.conftest import FIT_ROWS, synthetic_spec

pytestmark = pytest.mark.integration  # the demo at 20k rows through the stage: ~30 s

STAGE = [keys.SYNTHESIZER, keys.SYNTHETIC_QUALITY, keys.SYNTHETIC_ROWS]


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


def test_quality_privacy_and_utility_are_recorded_and_the_gate_passes(first_run, upstream):
    spec = synthetic_spec()
    quality = _metadata(first_run, keys.SYNTHETIC_QUALITY)
    print({k: quality[k] for k in ("overall_quality", "data_validity", "exact_matches", "dcr_ratio",
                                   "dcr_overfitting_protection", "tstr_f1", "trtr_f1",
                                   "model_f1_without_synthetic", "model_f1_with_synthetic")})  # docs/synthetic.md
    assert 0.6 < quality["overall_quality"] <= 1.0 and quality["passed"] is True
    assert quality["data_validity"] == 1.0 and quality["exact_matches"] == 0
    assert quality["dcr_ratio"] >= spec.synthetic.privacy.min_dcr_ratio
    assert 0 <= quality["dcr_overfitting_protection"] <= 1 and 0 <= quality["dcr_baseline_protection"] <= 1
    for figure in ["tstr_f1", "trtr_f1", "model_f1_without_synthetic", "model_f1_with_synthetic"]:
        assert 0 <= quality[figure] <= 1, figure
    [check] = first_run.get_asset_check_evaluations()
    assert check.check_name == QUALITY_CHECK and check.passed
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    scores = con.execute("SELECT * FROM synthetic.synthetic_quality").df()
    con.close()
    overall = scores.query("metric == 'quality' and property == 'Overall'").score
    assert overall.tolist() == [pytest.approx(quality["overall_quality"])]
    shapes = scores.query("property == 'Column Shapes' and column_name.notna()")
    assert set(shapes.column_name) == set(spec.feature_columns)
    assert scores.query("metric in ('quality', 'diagnostic')").score.between(0, 1).all()
    assert scores.query("property == 'DCR Ratio'").score.tolist() == [pytest.approx(quality["dcr_ratio"])]
    assert scores.query("property == 'TSTR F1'").score.tolist() == [pytest.approx(quality["tstr_f1"])]
    assert scores.query("metric == 'gate'").score.tolist() == [1.0]


def _published(upstream) -> list:
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    ids = [i for (i,) in con.execute("SELECT synthetic_id FROM synthetic.synthetic_rows ORDER BY 1").fetchall()]
    con.close()
    return ids


@pytest.mark.parametrize(
    "settings,problem",
    [
        ({"quality_threshold": 0.999}, "overall quality"),
        ({"privacy": {"min_dcr_ratio": 50.0, "rows": 500}}, "DCR ratio"),
    ],
)
def test_a_failed_gate_keeps_the_rows_from_training(first_run, upstream, settings, problem):
    before = _published(upstream)
    strict = synthetic_spec(utility=False, **settings)
    result = run_assets(strict, upstream, selection=STAGE[1:], raise_on_error=False)
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and problem in check.description
    assert keys.SYNTHETIC_ROWS not in {e.asset_key for e in result.get_asset_materialization_events()}
    alone = run_assets(strict, upstream, selection=[keys.SYNTHETIC_ROWS], raise_on_error=False)
    assert not alone.success  # a later run of synthetic_rows alone reads the failed verdict
    assert _published(upstream) == before and before  # the last gated rows stay


def test_candidates_never_copy_a_real_row(first_run, upstream):
    spec = synthetic_spec()
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    copies = con.execute(
        f"SELECT count(*) FROM synthetic.synthetic_rows AS s WHERE EXISTS "
        f"(SELECT 1 FROM {spec.raw_table} AS r WHERE {data.match_predicate(spec)})"
    ).fetchall()[0][0]
    con.close()
    assert copies == 0 and _metadata(first_run, keys.SYNTHETIC_QUALITY)["dropped_exact_copies"] >= 0


def test_unjudged_candidates_are_never_published(first_run, upstream):
    before = _published(upstream)
    con = duckdb.connect(upstream["warehouse"].path)
    assert gates.verdict(con) is not None
    # candidates changed after the verdict (as if a run crashed between sampling and judging)
    con.execute("DELETE FROM synthetic.candidate_rows WHERE synthetic_id IN "
                "(SELECT min(synthetic_id) FROM synthetic.candidate_rows)")
    assert gates.verdict(con) is None
    con.close()
    result = run_assets(synthetic_spec(), upstream, selection=[keys.SYNTHETIC_ROWS], raise_on_error=False)
    [failure] = result.get_step_failure_events()
    assert "synthetic gate has no verdict" in failure.step_failure_data.error.to_string()
    assert _published(upstream) == before
