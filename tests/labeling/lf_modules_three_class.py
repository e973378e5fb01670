"""A 3-class LF module (spending level: low, mid, high) mixing all three LF forms (a test fixture)."""

import numpy as np
from snorkel.labeling import labeling_function

from mlinfra_assets.labeling.forms import sql_labeling_function, vectorized_labeling_function

small = sql_labeling_function("small", "CASE WHEN amount_vs_avg < 0.8 THEN 0 END")
foreign_large = sql_labeling_function("foreign_large", "CASE WHEN is_foreign = 1 AND amount_vs_avg >= 2 THEN 2 END")


@vectorized_labeling_function()
def medium(df):  # noqa: ANN001, ANN201
    return np.where((df.amount_vs_avg >= 1.1) & (df.amount_vs_avg < 2.3), 1, -1)


@vectorized_labeling_function()
def routine(df):  # noqa: ANN001, ANN201
    return np.where((df.txn_count_1h <= 1) & (df.amount_vs_avg >= 0.9) & (df.amount_vs_avg < 2), 1, -1)


@labeling_function()
def large(x) -> int:  # noqa: ANN001
    return 2 if x.amount_vs_avg >= 2.8 else -1


@labeling_function()
def card_present_small(x) -> int:  # noqa: ANN001
    return 0 if x.card_present == 1 and x.amount_vs_avg < 1.2 else -1
