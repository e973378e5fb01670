"""Labeling functions of the demo: the rules a card-fraud risk analyst writes.

Each function sees one transaction (a row with the spec's feature columns) and votes
`FRAUD`, `LEGIT` or `ABSTAIN`. Class indexes follow the spec's `classes: [legit, fraud]`.
None of them is precise on its own (fraud is ~1.5% of rows); the label model weighs them
by how they agree and disagree. Coverage and accuracy of each on the 200k-row demo are in
`labeling.lf_summary` (and in the report of the labeling stage).

To label your own table, write a module like this one and name it in the spec's
`labeling_functions`.
"""

from snorkel.labeling import labeling_function

ABSTAIN = -1
LEGIT = 0
FRAUD = 1

# The analyst's prior for the label model: about 1.5% of card transactions are fraud (the
# bank's chargeback rate). Order of the spec's classes; without it Snorkel assumes uniform.
CLASS_BALANCE = (0.985, 0.015)

NIGHT_HOURS = frozenset({23, 0, 1, 2, 3, 4})
LOW_RISK_CATEGORIES = frozenset({"grocery", "pharmacy", "fuel", "restaurant"})


# ---- fraud-voting rules ------------------------------------------------------------------
@labeling_function()
def amount_spike(x) -> int:  # noqa: ANN001 - a row (pandas Series)
    """Ten times the customer's usual amount or more."""
    return FRAUD if x.amount_vs_avg >= 10 else ABSTAIN


@labeling_function()
def velocity(x) -> int:  # noqa: ANN001
    """Three or more card transactions within the hour."""
    return FRAUD if x.txn_count_1h >= 3 else ABSTAIN


@labeling_function()
def spike_with_burst(x) -> int:  # noqa: ANN001
    """A burst (two or more in the hour) with 2.5 times the usual amount."""
    return FRAUD if x.txn_count_1h >= 2 and x.amount_vs_avg >= 2.5 else ABSTAIN


@labeling_function()
def foreign_card_not_present(x) -> int:  # noqa: ANN001
    """A foreign merchant, card not present, twice the customer's usual amount."""
    if x.is_foreign == 1 and x.card_present == 0 and x.amount_vs_avg >= 2:
        return FRAUD
    return ABSTAIN


@labeling_function()
def night_online(x) -> int:  # noqa: ANN001
    """An online purchase between 23:00 and 05:00 at twice the usual amount."""
    if x.hour in NIGHT_HOURS and x.channel == "online" and x.amount_vs_avg >= 2:
        return FRAUD
    return ABSTAIN


@labeling_function()
def new_device(x) -> int:  # noqa: ANN001
    """A device never seen for this customer, with twice the usual amount."""
    return FRAUD if x.new_device == 1 and x.amount_vs_avg >= 2 else ABSTAIN


# ---- legit-voting rules ------------------------------------------------------------------
@labeling_function()
def small_domestic_card_present(x) -> int:  # noqa: ANN001
    """A domestic card-present purchase below the usual amount, no burst of activity."""
    if x.is_foreign == 0 and x.card_present == 1 and x.amount_vs_avg < 1 and x.txn_count_1h <= 1:
        return LEGIT
    return ABSTAIN


@labeling_function()
def long_tenure_small_amount(x) -> int:  # noqa: ANN001
    """An account older than three years spending within 1.5 times its usual amount."""
    if x.account_age_days > 1095 and x.amount_vs_avg < 1.5 and x.txn_count_1h <= 1:
        return LEGIT
    return ABSTAIN


@labeling_function()
def low_risk_category(x) -> int:  # noqa: ANN001
    """Groceries, pharmacy, fuel or restaurants at an ordinary amount."""
    if x.merchant_category in LOW_RISK_CATEGORIES and x.amount_vs_avg < 2 and x.txn_count_1h <= 1:
        return LEGIT
    return ABSTAIN


@labeling_function()
def daytime_routine(x) -> int:  # noqa: ANN001
    """A point-of-sale purchase in the day (08:00-20:00) at a usual amount."""
    if 8 <= x.hour <= 20 and x.channel == "pos" and x.amount_vs_avg < 2.5 and x.txn_count_1h <= 1:
        return LEGIT
    return ABSTAIN
