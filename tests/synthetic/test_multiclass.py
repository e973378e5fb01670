"""The synthetic stage on tables the demo never saw, at the spec's default gates: wine (3 classes,
listed out of order, gold in raw.gold) and digits (10 classes, 64 features, no gold): per-class
sampling, classes skipped under synthetic.min_class_rows, labels as class indices with the names
in metadata, and the withheld/published rows consistent with the gate."""

import dagster as dg
import duckdb
import pytest

from mlinfra_assets.resources import default_resources
from mlinfra_assets.synthetic.assets import (
    build_synthesizer,
    build_synthetic_quality,
    build_synthetic_rows,
)
from tests.synthetic.any_table import land, sklearn_frame, table_spec

pytestmark = pytest.mark.integration  # digits: ~40 s (SDV's column pair trends over 64 features)

WINE = ["class_2", "class_0", "class_1"]  # out of order: class_2 is index 0
CASES = {
    # class_2 (27% of the rows) is under the 30% target; no class is under 30 rows
    "wine": dict(frame=("wine", None), classes=WINE, gold=True, synthetic={"target_share": 0.3},
                 sampled=["class_2"], skipped=[]),
    # digit 7 kept at 60 rows (~4%): sampled; digit 8 at 10 rows: under min_class_rows 30, skipped
    "digits": dict(frame=("digits", {7: 60, 8: 10}), classes=[str(k) for k in range(10)], gold=False,
                   synthetic={}, sampled=["7"], skipped=["8"]),
}


def _metadata(result, key) -> dict:  # noqa: ANN001
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_each_class_is_sampled_or_skipped_and_the_gate_decides_what_training_reads(name, tmp_path):
    case = CASES[name]
    frame = sklearn_frame(*case["frame"])
    spec = table_spec(tmp_path, frame, case["classes"], case["gold"], **case["synthetic"])
    assert spec.synthetic.quality_threshold == 0.8 and spec.synthetic.synthesizer == "gaussian_copula"
    resources = default_resources(tmp_path / "data")
    (tmp_path / "data").mkdir()
    land(resources["warehouse"].path, spec, frame)
    assets = [build_synthesizer(spec), build_synthetic_quality(spec), build_synthetic_rows(spec)]
    result = dg.materialize(assets, resources=resources, selection=[a.key for a in assets])
    assert result.success
    quality = _metadata(result, assets[1].key)
    rows = _metadata(result, assets[2].key)
    print(name, {k: quality.get(k) for k in ("overall_quality", "dcr_ratio", "exact_copy_share", "tstr_f1")})

    for meta in (quality, rows):
        assert meta["sampled_classes"] == ", ".join(case["sampled"])
        assert meta["skipped_classes"] == (", ".join(case["skipped"]) or "none")
    for skipped in case["skipped"]:
        assert f"class {skipped!r} has 10 labeled rows < synthetic.min_class_rows 30" in quality["class_warnings"]
    for cls in spec.classes:  # class names in metadata, one figure per class
        assert f"rows_{cls}" in rows and f"share_after_{cls}" in rows

    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    candidates = con.execute("SELECT _label, count(*) FROM synthetic.candidate_rows GROUP BY 1").fetchall()
    published = con.execute("SELECT * FROM synthetic.synthetic_rows").df()
    con.close()
    sampled = {spec.classes.index(c) for c in case["sampled"]}
    assert {label for label, _ in candidates} == sampled  # class indices, in the spec's order
    total = sum(n for _, n in candidates)
    assert total == rows["candidate_rows"] == quality["sampled_rows"] - quality["dropped_exact_copies"] > 0
    assert list(published.columns) == ["_synthetic_id", *spec.feature_columns, "_label", "_synthesizer_version"]

    [check] = result.get_asset_check_evaluations()
    assert check.passed == quality["passed"] == (not rows["withheld"])
    if check.passed:
        assert len(published) == total and set(published._label) == sampled
        assert rows[f"rows_{case['sampled'][0]}"] == total
    else:  # withheld: nothing reaches training, and the metadata says why
        assert published.empty and rows["dagster/row_count"] == 0
        assert rows["withheld_reason"] == check.description
        assert check.description.startswith("synthetic rows withheld from training: ")

    if case["gold"]:
        assert quality["utility_metric"] == "macro_f1"
        for figure in ("tstr_f1", "trtr_f1"):
            assert 0 <= quality[figure] <= 1, figure
        if check.passed:  # the platform's model with and without the rows that will train it
            for figure in ("model_f1_without_synthetic", "model_f1_with_synthetic"):
                assert 0 <= quality[figure] <= 1, figure
        else:  # rows withheld anyway: not the two trainings, and it says why
            assert "model_f1_with_synthetic" not in quality
            assert quality["model_f1_gain"] == (
                f"not measured: the gates withhold the candidates ({check.description.split(': ', 1)[1]})")
    else:
        assert quality["utility"] == "utility not measured: gold labels missing (the spec has no `gold:` section)"


def test_an_unreachable_target_share_samples_nothing_withholds_and_the_run_goes_on(tmp_path):
    frame = sklearn_frame("wine")
    spec = table_spec(tmp_path, frame, WINE, gold=False, target_share=0.45)  # all 3 classes under 45%
    resources = default_resources(tmp_path / "data")
    (tmp_path / "data").mkdir()
    land(resources["warehouse"].path, spec, frame)
    assets = [build_synthesizer(spec), build_synthetic_quality(spec), build_synthetic_rows(spec)]
    result = dg.materialize(assets, resources=resources, selection=[a.key for a in assets])
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and "3 minority classes at synthetic.target_share 0.45" in check.description
    rows = _metadata(result, assets[2].key)
    assert rows["withheld"] is True and rows["withheld_reason"] == check.description
    assert rows["dagster/row_count"] == rows["candidate_rows"] == 0 and rows["sampled_classes"] == "none"
    quality = _metadata(result, assets[1].key)
    assert quality["overall_quality"] == "not measured: no candidate rows"
