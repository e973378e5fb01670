"""Fit quotas, the rebalance plan, and the labeled-rows SQL (gold wins, holdout excluded)."""

import duckdb
import pytest

from mlinfra_assets.holdout import holdout_predicate
from mlinfra_assets.synthetic import data
from mlinfra_assets.synthetic.sampling import rebalance_plan
from tests.conftest import small_spec


@pytest.mark.parametrize(
    "counts,budget,expected",
    [
        ({0: 9800, 1: 200}, 1000, {0: 200, 1: 200}),  # all minority rows, balanced
        ({0: 9000, 1: 1000}, 1000, {0: 900, 1: 100}),  # no minority under 10%: proportional
        ({0: 900, 1: 100}, 5000, {0: 900, 1: 100}),  # no minority, under the budget: all rows
        ({0: 90000, 1: 2000}, 1000, {0: 500, 1: 500}),  # minority capped at budget / classes
        ({0: 9000, 1: 50, 2: 400}, 600, {0: 200, 1: 50, 2: 200}),  # balanced with the largest
    ],
)
def test_fit_quotas(counts, budget, expected):
    quotas = data.fit_quotas(counts, budget, target_share=0.1)
    assert quotas == expected
    assert sum(quotas.values()) <= max(budget, sum(counts.values()))


@pytest.mark.parametrize("counts", [{0: 9800, 1: 200}, {0: 5000, 1: 30, 2: 300}, {0: 100, 1: 1}])
def test_rebalance_plan_reaches_target(counts):
    target = 0.1
    plan = rebalance_plan(counts, target)
    total = sum(counts.values()) + sum(plan.values())
    for c, n in counts.items():
        if n / sum(counts.values()) < target:
            assert (n + plan[c]) / total == pytest.approx(target, abs=2 / total)
        else:
            assert c not in plan


def test_rebalance_plan_rejects_an_impossible_target():
    with pytest.raises(ValueError, match="target share"):
        rebalance_plan({0: 100, 1: 1, 2: 1, 3: 1}, 0.4)


def test_labeled_rows_prefer_gold_and_skip_the_holdout():
    spec = small_spec()
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA labeling")
    con.execute(
        "CREATE TABLE raw.transactions AS SELECT i AS txn_id, 1.0 AS amount, 1.0 AS amount_vs_avg, "
        "0 AS txn_count_1h, 3 AS hour, 1.0 AS distance_km, 10 AS account_age_days, 0 AS is_foreign, "
        "1 AS card_present, 0 AS new_device, 'pos' AS channel, 'fuel' AS merchant_category "
        "FROM range(1, 401) t(i)"
    )
    con.execute(  # weak: argmax says legit everywhere, but its `label` column says fraud
        "CREATE TABLE labeling.weak_labels AS SELECT txn_id AS row_id, 0.7 AS prob_legit, "
        "0.3 AS prob_fraud, 1 AS label, 0.7 AS confidence, 'v' AS label_model_version "
        "FROM raw.transactions WHERE txn_id <= 300"
    )
    con.execute(  # gold: rows 1..50 fraud, row 350 (no weak label) legit, one abstain (-1)
        "CREATE TABLE labeling.gold_labels AS SELECT i AS row_id, 1 AS label, 1 AS n_annotations "
        "FROM range(1, 51) t(i) UNION ALL SELECT 350, 0, 1 UNION ALL SELECT 60, -1, 1"
    )
    rows = con.execute(f"SELECT * FROM ({data.labeled_sql(spec)}) ORDER BY _row_id").df()
    holdout = {
        i for (i,) in con.execute(
            f"SELECT txn_id FROM raw.transactions WHERE {holdout_predicate(spec, 'txn_id')}"
        ).fetchall()
    }
    assert holdout and not holdout & set(rows._row_id)
    expected = {i: (1 if i <= 50 else 0) for i in [*range(1, 301), 350] if i not in holdout}
    assert list(rows.columns) == ["_row_id", *spec.feature_columns, "_label"]
    assert dict(zip(rows._row_id, rows._label, strict=True)) == expected
    assert data.class_counts(con, spec) == {0: sum(v == 0 for v in expected.values()), 1: sum(expected.values())}
