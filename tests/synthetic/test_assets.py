"""The synthetic stage in-process at the spec's default gates (quality 0.8): fit and reuse,
rebalancing, the quality/privacy/utility report, and the gates that keep failed rows out of
synthetic.synthetic_rows (withheld: the table is empty, the run and training go on)."""

import dagster as dg
import duckdb
import numpy as np
import pytest

from mlinfra_assets import keys
from mlinfra_assets.runner import run_assets
from mlinfra_assets.stage import SHOWN
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
    assert rows["withheld"] is False and rows["withheld_reason"].startswith("not withheld")
    assert rows["candidate_rows"] == rows["dagster/row_count"]
    assert rows["sampled_classes"] == "fraud" and rows["skipped_classes"] == "none"
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    table = con.execute("SELECT * FROM synthetic.synthetic_rows").df()
    version = _metadata(first_run, keys.SYNTHESIZER)["version"]
    con.close()
    assert list(table.columns) == ["_synthetic_id", *spec.feature_columns, "_label", "_synthesizer_version"]
    assert len(table) == rows["dagster/row_count"] and table._synthetic_id.is_unique
    assert set(table._label) == {spec.classes.index("fraud")} and set(table._synthesizer_version) == {version}
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
    assert spec.synthetic.quality_threshold == 0.8  # the spec's default gate, not lowered
    assert 0.8 <= quality["overall_quality"] <= 1.0 and quality["passed"] is True and quality["withheld"] is False
    assert quality["data_validity"] == 1.0 and quality["exact_matches"] == 0
    assert quality["dcr_ratio"] >= spec.synthetic.privacy.min_dcr_ratio and np.isfinite(quality["dcr_ratio"])
    assert 0 <= quality["exact_copy_share"] <= 1 and 0 <= quality["holdout_copy_share"] <= 1
    assert 0 <= quality["dcr_closer_than_holdout_share"] <= 1
    assert quality["sampled_rows"] == quality["dropped_exact_copies"] + _metadata(first_run, keys.SYNTHETIC_ROWS)[
        "candidate_rows"]
    assert 0 <= quality["dcr_overfitting_protection"] <= 1 and 0 <= quality["dcr_baseline_protection"] <= 1
    for figure in ["tstr_f1", "trtr_f1", "model_f1_without_synthetic", "model_f1_with_synthetic"]:
        assert 0 <= quality[figure] <= 1, figure
    [check] = first_run.get_asset_check_evaluations()
    assert check.check_name == QUALITY_CHECK and check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    scores = con.execute("SELECT * FROM synthetic.synthetic_quality").df()
    con.close()
    overall = scores.query("metric == 'quality' and property == 'Overall'").score
    assert overall.tolist() == [pytest.approx(quality["overall_quality"], rel=SHOWN)]
    shapes = scores.query("property == 'Column Shapes' and column_name.notna()")
    assert set(shapes.column_name) == set(spec.feature_columns)
    assert scores.query("metric in ('quality', 'diagnostic')").score.between(0, 1).all()
    assert scores.query("property == 'DCR Ratio'").score.tolist() == [pytest.approx(quality["dcr_ratio"], rel=SHOWN)]
    assert scores.query("property == 'TSTR F1'").score.tolist() == [pytest.approx(quality["tstr_f1"], rel=SHOWN)]
    assert scores.query("metric == 'gate'").score.tolist() == [1.0]  # passed, no Problem row


def _published(upstream) -> list:
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    ids = [i for (i,) in con.execute("SELECT _synthetic_id FROM synthetic.synthetic_rows ORDER BY 1").fetchall()]
    con.close()
    return ids


def test_candidates_never_copy_a_real_row(first_run, upstream):
    spec = synthetic_spec()
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    copies = con.execute(
        f"SELECT count(*) FROM synthetic.synthetic_rows AS s WHERE EXISTS "
        f"(SELECT 1 FROM {spec.raw_table} AS r WHERE {data.match_predicate(spec)})"
    ).fetchall()[0][0]
    con.close()
    assert _published(upstream) and copies == 0


def test_staged_copies_of_real_rows_are_dropped_and_counted(first_run, upstream, tmp_path):
    """The SQL the stage samples through: staged rows equal to a real row are dropped (and
    those equal to a fit row counted), every other row is kept."""
    import pandas as pd

    from mlinfra_assets.synthetic.assets import fit_rows_path

    spec = synthetic_spec()
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    kept = con.execute("SELECT * FROM synthetic.synthetic_rows ORDER BY _synthetic_id LIMIT 20").df()
    fit_file = fit_rows_path(_metadata(first_run, keys.SYNTHESIZER)["model_path"])
    fit = pd.read_parquet(fit_file)
    raw = con.execute(f"SELECT {', '.join(spec.feature_columns)} FROM {spec.raw_table} "
                      f"ORDER BY {spec.id_column} DESC LIMIT 2").df()
    copies = pd.concat([fit[spec.feature_columns].head(3), raw], ignore_index=True)
    copies = copies.assign(_label=kept["_label"].iloc[0], _synthesizer_version=kept["_synthesizer_version"].iloc[0])
    copies.insert(0, "_synthetic_id", [f"copy-{i}" for i in range(len(copies))])
    staged = tmp_path / "batch.parquet"
    pd.concat([kept, copies[kept.columns]], ignore_index=True).sample(frac=1, random_state=0).to_parquet(staged)
    survivors = con.execute(data.synthetic_rows_sql(spec), [[str(staged)]]).df()["_synthetic_id"].tolist()
    fit_copies = con.execute(data.fit_copies_sql(spec), [[str(staged)], str(fit_file)]).fetchall()[0][0]
    con.close()
    assert survivors == kept["_synthetic_id"].tolist()  # the 5 copies dropped, the 20 others kept in order
    in_fit = len(raw.merge(fit[spec.feature_columns].drop_duplicates(), on=spec.feature_columns))
    assert fit_copies == 3 + in_fit  # the fit rows' copies, and a raw row that was also fit on


def test_unjudged_candidates_are_withheld(first_run, upstream):
    assert _published(upstream)
    con = duckdb.connect(upstream["warehouse"].path)
    assert gates.verdict(con) is True and gates.withheld_reason(con) is None
    # candidates changed after the verdict (as if a run crashed between sampling and judging)
    con.execute("DELETE FROM synthetic.candidate_rows WHERE _synthetic_id IN "
                "(SELECT min(_synthetic_id) FROM synthetic.candidate_rows)")
    assert gates.verdict(con) is None
    con.close()
    result = run_assets(synthetic_spec(), upstream, selection=[keys.SYNTHETIC_ROWS])
    meta = _metadata(result, keys.SYNTHETIC_ROWS)
    assert meta["withheld"] is True and meta["dagster/row_count"] == 0 and meta["candidate_rows"] > 0
    assert meta["withheld_reason"].startswith("synthetic rows withheld from training: no gate verdict")
    assert _published(upstream) == []


# the gates raised (not lowered) until they fail: the failure path; the default 0.8 gate is
# tested through the stage above and through the whole graph in tests/test_end_to_end.py
@pytest.mark.parametrize(
    "settings,problem",
    [
        ({"quality_threshold": 0.999}, "overall quality"),
        ({"privacy": {"min_dcr_ratio": 50.0, "rows": 500}}, "DCR ratio"),
    ],
)
def test_a_failed_gate_withholds_the_rows_and_training_goes_on(first_run, upstream, settings, problem):
    strict = synthetic_spec(utility=False, **settings)
    result = run_assets(strict, upstream, selection=[*STAGE[1:], keys.TRAINING_SET])
    assert result.success  # the check fails, nothing stops
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description.startswith("synthetic rows withheld from training: ") and problem in check.description
    rows = _metadata(result, keys.SYNTHETIC_ROWS)
    assert rows["withheld"] is True and rows["withheld_reason"] == check.description
    assert rows["dagster/row_count"] == 0 and rows["candidate_rows"] > 0
    quality = _metadata(result, keys.SYNTHETIC_QUALITY)
    assert quality["withheld"] is True and quality["passed"] is False
    con = duckdb.connect(upstream["warehouse"].path, read_only=True)
    assert con.execute("SELECT count(*) FROM synthetic.synthetic_rows").fetchall() == [(0,)]
    assert gates.withheld_reason(con) == check.description
    stored = con.execute("SELECT column_name FROM synthetic.synthetic_quality "
                         "WHERE metric = 'gate' AND property = 'Problem'").fetchall()
    sources = dict(con.execute("SELECT _source, count(*) FROM training.training_set GROUP BY 1").fetchall())
    con.close()
    assert [p for (p,) in stored] == [check.description.removeprefix("synthetic rows withheld from training: ")]
    assert "synthetic" not in sources and sources.get("weak", 0) > 0  # training read no synthetic row


def test_a_passing_gate_publishes_the_rows_again(first_run, upstream):
    result = run_assets(synthetic_spec(utility=False), upstream, selection=STAGE[1:])
    rows = _metadata(result, keys.SYNTHETIC_ROWS)
    assert rows["withheld"] is False and rows["dagster/row_count"] == rows["candidate_rows"] > 0
    assert len(_published(upstream)) == rows["dagster/row_count"]


def test_the_model_with_and_without_synthetic_trains_on_every_gold_row_and_a_bounded_share(first_run, upstream,
                                                                                          tmp_path):
    import shutil

    from mlinfra_assets.synthetic import utility

    spec = synthetic_spec()
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(upstream["warehouse"].path, path)
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO labeling.gold_labels (row_id, label) SELECT row_id, label FROM labeling.weak_labels "
                "ORDER BY row_id LIMIT 40")
    full, everything = utility.training_frame(con, spec, data.CANDIDATES_TABLE)
    small = synthetic_spec(utility_rows=2_000)
    part, note = utility.training_frame(con, small, data.CANDIDATES_TABLE)
    again, _ = utility.training_frame(con, small, data.CANDIDATES_TABLE)
    con.close()
    assert everything == f"on all {len(full):,} training rows" and len(full) > 10_000
    gold = set(full.loc[full._source == "gold", "_row_id"])
    assert 0 < len(gold) <= 40 and gold <= set(part._row_id)  # every gold row (the holdout's are not training rows)
    others = part[part._source != "gold"]
    assert 1_500 <= len(others) <= 2_500, len(others)
    # the same share of weak and of synthetic rows
    share = full._source.value_counts()
    kept = others._source.value_counts()
    assert kept["synthetic"] / share["synthetic"] == pytest.approx(kept["weak"] / share["weak"], rel=0.35)
    assert part._row_id.tolist() == again._row_id.tolist()  # seeded: the same rows each time
    assert note.startswith(f"on {len(part):,} of {len(full):,} training rows: every gold row ({len(gold)})")
    assert "synthetic.utility_rows 2,000" in note
