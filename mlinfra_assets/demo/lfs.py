"""Labeling functions of the demo: the rules a card-fraud risk analyst writes.

Each rule sees one transaction (the spec's feature columns) and votes `FRAUD`, `LEGIT` or
`ABSTAIN`; class indexes follow the spec's `classes: [legit, fraud]`. None of them is
precise on its own (fraud is ~1.5% of rows); the label model weighs them by how they
agree and disagree (coverage and accuracy in `labeling.lf_summary`).

Every rule is written three times, under one name: as Snorkel's row-wise function (the
reference), as a vectorized function of a DataFrame chunk, and as a SQL expression that
runs inside the warehouse (DuckDB, or Spark). The platform runs the fastest form; a test
checks the three give Snorkel's label matrix on random tables with NULLs and extremes.
A missing value never votes: comparisons with NaN are false in Python, NULL in SQL.

To label your own table, write a module like this one (any of the three forms) and name
it in the spec's `labeling_functions`.
"""

import numpy as np
from snorkel.labeling import labeling_function

from mlinfra_assets.labeling.forms import sql_labeling_function as sql
from mlinfra_assets.labeling.forms import vectorized_labeling_function as vectorized

ABSTAIN = -1
LEGIT = 0
FRAUD = 1

# The analyst's prior for the label model: about 1.5% of card transactions are fraud (the
# bank's chargeback rate). Order of the spec's classes; the spec's labeling.class_balance
# overrides it; without either it is estimated.
CLASS_BALANCE = (0.985, 0.015)

NIGHT_HOURS = frozenset({23, 0, 1, 2, 3, 4})
LOW_RISK_CATEGORIES = frozenset({"grocery", "pharmacy", "fuel", "restaurant"})
_NIGHT_SQL = ", ".join(str(h) for h in sorted(NIGHT_HOURS))
_LOW_RISK_SQL = ", ".join(f"'{c}'" for c in sorted(LOW_RISK_CATEGORIES))


def _vote(condition, label: int) -> np.ndarray:  # noqa: ANN001 - a boolean Series
    return np.where(np.asarray(condition, dtype=bool), label, ABSTAIN)


# ---- fraud-voting rules ------------------------------------------------------------------
@labeling_function()
def amount_spike(x) -> int:  # noqa: ANN001 - a row (pandas Series)
    """Ten times the customer's usual amount or more."""
    return FRAUD if x.amount_vs_avg >= 10 else ABSTAIN


amount_spike_sql = sql("amount_spike", f"CASE WHEN amount_vs_avg >= 10 THEN {FRAUD} END")


@vectorized("amount_spike")
def amount_spike_vec(df):  # noqa: ANN001, ANN201 - a chunk -> votes
    return _vote(df.amount_vs_avg >= 10, FRAUD)


@labeling_function()
def velocity(x) -> int:  # noqa: ANN001
    """Three or more card transactions within the hour."""
    return FRAUD if x.txn_count_1h >= 3 else ABSTAIN


velocity_sql = sql("velocity", f"CASE WHEN txn_count_1h >= 3 THEN {FRAUD} END")


@vectorized("velocity")
def velocity_vec(df):  # noqa: ANN001, ANN201
    return _vote(df.txn_count_1h >= 3, FRAUD)


@labeling_function()
def spike_with_burst(x) -> int:  # noqa: ANN001
    """A burst (two or more in the hour) with 2.5 times the usual amount."""
    return FRAUD if x.txn_count_1h >= 2 and x.amount_vs_avg >= 2.5 else ABSTAIN


spike_with_burst_sql = sql("spike_with_burst", f"CASE WHEN txn_count_1h >= 2 AND amount_vs_avg >= 2.5 THEN {FRAUD} END")


@vectorized("spike_with_burst")
def spike_with_burst_vec(df):  # noqa: ANN001, ANN201
    return _vote((df.txn_count_1h >= 2) & (df.amount_vs_avg >= 2.5), FRAUD)


@labeling_function()
def foreign_card_not_present(x) -> int:  # noqa: ANN001
    """A foreign merchant, card not present, twice the customer's usual amount."""
    if x.is_foreign == 1 and x.card_present == 0 and x.amount_vs_avg >= 2:
        return FRAUD
    return ABSTAIN


foreign_card_not_present_sql = sql(
    "foreign_card_not_present",
    f"CASE WHEN is_foreign = 1 AND card_present = 0 AND amount_vs_avg >= 2 THEN {FRAUD} END",
)


@vectorized("foreign_card_not_present")
def foreign_card_not_present_vec(df):  # noqa: ANN001, ANN201
    return _vote((df.is_foreign == 1) & (df.card_present == 0) & (df.amount_vs_avg >= 2), FRAUD)


@labeling_function()
def night_online(x) -> int:  # noqa: ANN001
    """An online purchase between 23:00 and 05:00 at twice the usual amount."""
    if x.hour in NIGHT_HOURS and x.channel == "online" and x.amount_vs_avg >= 2:
        return FRAUD
    return ABSTAIN


night_online_sql = sql(
    "night_online",
    f"CASE WHEN hour IN ({_NIGHT_SQL}) AND channel = 'online' AND amount_vs_avg >= 2 THEN {FRAUD} END",
)


@vectorized("night_online")
def night_online_vec(df):  # noqa: ANN001, ANN201
    return _vote(df.hour.isin(NIGHT_HOURS) & (df.channel == "online") & (df.amount_vs_avg >= 2), FRAUD)


@labeling_function()
def new_device(x) -> int:  # noqa: ANN001
    """A device never seen for this customer, with twice the usual amount."""
    return FRAUD if x.new_device == 1 and x.amount_vs_avg >= 2 else ABSTAIN


new_device_sql = sql("new_device", f"CASE WHEN new_device = 1 AND amount_vs_avg >= 2 THEN {FRAUD} END")


@vectorized("new_device")
def new_device_vec(df):  # noqa: ANN001, ANN201
    return _vote((df.new_device == 1) & (df.amount_vs_avg >= 2), FRAUD)


# ---- legit-voting rules ------------------------------------------------------------------
@labeling_function()
def small_domestic_card_present(x) -> int:  # noqa: ANN001
    """A domestic card-present purchase below the usual amount, no burst of activity."""
    if x.is_foreign == 0 and x.card_present == 1 and x.amount_vs_avg < 1 and x.txn_count_1h <= 1:
        return LEGIT
    return ABSTAIN


small_domestic_card_present_sql = sql(
    "small_domestic_card_present",
    f"CASE WHEN is_foreign = 0 AND card_present = 1 AND amount_vs_avg < 1 AND txn_count_1h <= 1 THEN {LEGIT} END",
)


@vectorized("small_domestic_card_present")
def small_domestic_card_present_vec(df):  # noqa: ANN001, ANN201
    cond = (df.is_foreign == 0) & (df.card_present == 1) & (df.amount_vs_avg < 1) & (df.txn_count_1h <= 1)
    return _vote(cond, LEGIT)


@labeling_function()
def long_tenure_small_amount(x) -> int:  # noqa: ANN001
    """An account older than three years spending within 1.5 times its usual amount."""
    if x.account_age_days > 1095 and x.amount_vs_avg < 1.5 and x.txn_count_1h <= 1:
        return LEGIT
    return ABSTAIN


long_tenure_small_amount_sql = sql(
    "long_tenure_small_amount",
    f"CASE WHEN account_age_days > 1095 AND amount_vs_avg < 1.5 AND txn_count_1h <= 1 THEN {LEGIT} END",
)


@vectorized("long_tenure_small_amount")
def long_tenure_small_amount_vec(df):  # noqa: ANN001, ANN201
    return _vote((df.account_age_days > 1095) & (df.amount_vs_avg < 1.5) & (df.txn_count_1h <= 1), LEGIT)


@labeling_function()
def low_risk_category(x) -> int:  # noqa: ANN001
    """Groceries, pharmacy, fuel or restaurants at an ordinary amount."""
    if x.merchant_category in LOW_RISK_CATEGORIES and x.amount_vs_avg < 2 and x.txn_count_1h <= 1:
        return LEGIT
    return ABSTAIN


low_risk_category_sql = sql(
    "low_risk_category",
    f"CASE WHEN merchant_category IN ({_LOW_RISK_SQL}) AND amount_vs_avg < 2 AND txn_count_1h <= 1 THEN {LEGIT} END",
)


@vectorized("low_risk_category")
def low_risk_category_vec(df):  # noqa: ANN001, ANN201
    cond = df.merchant_category.isin(LOW_RISK_CATEGORIES) & (df.amount_vs_avg < 2) & (df.txn_count_1h <= 1)
    return _vote(cond, LEGIT)


@labeling_function()
def daytime_routine(x) -> int:  # noqa: ANN001
    """A point-of-sale purchase in the day (08:00-20:00) at a usual amount."""
    if 8 <= x.hour <= 20 and x.channel == "pos" and x.amount_vs_avg < 2.5 and x.txn_count_1h <= 1:
        return LEGIT
    return ABSTAIN


daytime_routine_sql = sql(
    "daytime_routine",
    f"CASE WHEN hour BETWEEN 8 AND 20 AND channel = 'pos' AND amount_vs_avg < 2.5 AND txn_count_1h <= 1 THEN {LEGIT} END",
)


@vectorized("daytime_routine")
def daytime_routine_vec(df):  # noqa: ANN001, ANN201
    cond = (df.hour >= 8) & (df.hour <= 20) & (df.channel == "pos") & (df.amount_vs_avg < 2.5) & (df.txn_count_1h <= 1)
    return _vote(cond, LEGIT)
