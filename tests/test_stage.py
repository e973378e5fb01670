"""Figures in the UI: metadata floats rounded to significant digits, by `stage.round_figures`."""

import math

import dagster as dg
import pytest

from mlinfra_assets.stage import DIGITS, SHOWN, round_figures, shown, significant


@pytest.mark.parametrize(("x", "expected"), [
    (0.5011600928074246, 0.5012),
    (4.381762119010091e-05, 4.382e-05),
    (-0.00196447850293191, -0.001964),
    (3.542033597726141, 3.542),
    (12.3456, 12.35),
    (631234.56, 631235.0),  # never rounded into the integer part
    (1_733_328_000.25, 1_733_328_000.0),
    (0.0, 0.0),
])
def test_significant_keeps_four_digits(x, expected):
    assert significant(x) == expected
    assert abs(significant(x) - x) <= SHOWN * abs(x)


def test_significant_leaves_nan_and_inf():
    assert math.isnan(significant(float("nan")))
    assert significant(float("inf")) == float("inf")


def test_shown_rounds_floats_only():
    value = {"f1": 0.47835051546391755, "rows": 12_345, "passed": True, "name": "0.123456789",
             "scale": {"fraud": [0.061035655438899994, 3]}}
    assert shown(value) == {"f1": 0.4784, "rows": 12_345, "passed": True, "name": "0.123456789",
                            "scale": {"fraud": [0.06104, 3]}}
    assert shown(dg.MetadataValue.float(2 / 3)) == dg.MetadataValue.float(0.6667)
    assert shown(dg.MetadataValue.json({"a": [1 / 3]})).data == {"a": [0.3333]}
    markdown = dg.MetadataValue.md("| 0.123456789 |")
    assert shown(markdown) is markdown


def test_an_asset_reports_rounded_figures_and_keeps_its_value():
    @dg.asset
    @round_figures
    def scored() -> dg.MaterializeResult:
        """Scores."""
        return dg.MaterializeResult(
            value=1 / 3, metadata={"mean_score": 1 / 3, "rows": 3, "psi": dg.MetadataValue.float(0.00271039318043051)},
        )

    @dg.asset(check_specs=[dg.AssetCheckSpec("gate", asset="gated")])
    @round_figures
    def gated() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            metadata={"share": 0.10000395924615953},
            check_results=[dg.AssetCheckResult(check_name="gate", passed=True, metadata={"ratio": 2 / 3})],
        )

    @dg.multi_asset(specs=[dg.AssetSpec("a"), dg.AssetSpec("b")])
    @round_figures
    def pair(context: dg.AssetExecutionContext):
        for key, x in (("a", 1 / 7), ("b", 22 / 7)):
            yield dg.MaterializeResult(asset_key=key, metadata={"x": x})

    result = dg.materialize([scored, gated, pair])
    assert result.success and result.output_for_node("scored") == 1 / 3  # the value keeps full precision
    figures = {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items() if k != "path"}
               for e in result.get_asset_materialization_events()}
    assert figures == {"scored": {"mean_score": 0.3333, "rows": 3, "psi": 0.00271}, "gated": {"share": 0.1},
                       "a": {"x": 0.1429}, "b": {"x": 3.143}}
    [check] = result.get_asset_check_evaluations()
    assert check.metadata["ratio"].value == 0.6667
    assert scored.op.description == "Scores."  # the function's docstring still describes the asset
    assert DIGITS == 4


def test_markdown_tables_keep_small_figures():
    import pandas as pd

    from mlinfra_assets.plots import df_markdown

    table = pd.DataFrame({"feature": ["amount", "hour"], "p_value": [3.2123e-05, 0.5011600928],
                          "rows": [10, 20], "psi": pd.array([0.004321987, None], dtype="Float64")})
    text = df_markdown(table).value
    assert "3.212e-05" in text and "0.5012" in text and "0.004322" in text  # not 0 after 4 decimals
    assert "0.50116" not in text and [line.split("|")[3].strip() for line in text.splitlines()[2:]] == ["10", "20"]
