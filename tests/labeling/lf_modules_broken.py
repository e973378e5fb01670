"""An LF module whose row-wise rule raises on large amounts (a test fixture)."""

from snorkel.labeling import labeling_function

from mlinfra_assets.labeling.forms import sql_labeling_function

fine = sql_labeling_function("fine", "CASE WHEN amount_vs_avg >= 10 THEN 1 END")


@labeling_function()
def fragile(x) -> int:  # noqa: ANN001
    if x.amount_vs_avg > 5:
        raise KeyError("no rule for big spenders")
    return 0 if x.amount_vs_avg < 1 else -1
