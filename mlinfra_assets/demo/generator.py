"""The built-in demo: a simulated card-transactions warehouse with hidden fraud.

Deterministic for a given spec (seeded). The ground truth lives only in `oracle.labels`;
`source.transactions` holds what a bank's warehouse would: no label. A drift knob shifts
spending (covariate) and adds a new fraud pattern (concept) from a chosen day.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.resources import replace_table_from_df, transaction
from mlinfra_assets.spec import DatasetSpec

CATEGORIES = np.array(
    ["grocery", "fuel", "restaurant", "travel", "electronics", "fashion", "gaming", "pharmacy"]
)
CATEGORY_WEIGHTS = np.array([0.28, 0.14, 0.18, 0.05, 0.08, 0.12, 0.07, 0.08])
CATEGORY_AMOUNT = np.array([1.0, 0.9, 0.8, 4.0, 3.0, 1.6, 0.7, 0.6])
CATEGORY_RISK = np.array([-0.6, -0.3, -0.4, 0.8, 1.0, 0.2, 0.9, -0.5])
CHANNELS = np.array(["pos", "online", "atm"])
# hour-of-day weights: quiet nights, busy afternoons
HOUR_WEIGHTS = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4, 5, 5.5, 6, 6.5, 6, 5.5, 5.5, 6, 6.5, 6.5, 6, 5, 4, 3, 2]
)


@dataclass(frozen=True)
class DemoTables:
    customers: pd.DataFrame
    merchants: pd.DataFrame
    transactions: pd.DataFrame
    labels: pd.DataFrame


def demo_rows(spec: DatasetSpec) -> int:
    """Rows to generate: `MLINFRA_DEMO_ROWS` overrides the spec's `demo.rows`."""
    assert spec.demo is not None
    return int(os.environ.get("MLINFRA_DEMO_ROWS", spec.demo.rows))


GENERATE_CHUNK_ROWS = 2_000_000  # above this many rows the demo is generated and written in day ranges


def generate(spec: DatasetSpec, rows: int | None = None) -> DemoTables:
    """Generate the demo tables in memory (vectorized numpy, ~1 s per million rows)."""
    n = rows or demo_rows(spec)
    rng, start, days, customers, merchants, merch_cat = _population(spec, n)
    transactions, labels = _transactions(spec, rng, n, 0, days, 1, start, customers, merch_cat)
    return DemoTables(customers, merchants, transactions, labels)


def _population(spec: DatasetSpec, n: int):  # noqa: ANN202 - (rng, start, days, customers, merchants, categories)
    """The seeded generator, the first day, the number of days, customers and merchants (with
    each merchant's category index) of a demo of `n` rows."""
    if spec.demo is None:
        raise ValueError("the spec has no `demo:` section: this dataset is not the built-in demo")
    demo = spec.demo
    rng = np.random.default_rng(demo.seed)
    start = datetime.combine(spec.source.start_date, datetime.min.time())
    end = spec.source.end_date or (spec.source.start_date + timedelta(days=30))
    days = (end - spec.source.start_date).days

    # customers: spending level, account age, how much they shop online
    n_cust = min(demo.customers, max(n // 5, 50))
    cust_avg = rng.lognormal(mean=3.6, sigma=0.6, size=n_cust)
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(n_cust, dtype=np.int64),
            "avg_amount": cust_avg.round(2),
            "account_age_days": rng.gamma(2.0, 400.0, n_cust).astype(np.int64),
            "online_affinity": rng.beta(2, 5, n_cust).round(3),
            "travels": (rng.random(n_cust) < 0.08),
        }
    )
    # merchants: a category each
    n_merch = min(demo.merchants, max(n // 50, 20))
    merch_cat = rng.choice(len(CATEGORIES), size=n_merch, p=CATEGORY_WEIGHTS)
    merchants = pd.DataFrame(
        {
            "merchant_id": np.arange(n_merch, dtype=np.int64),
            "merchant_category": CATEGORIES[merch_cat],
        }
    )
    return rng, start, days, customers, merchants, merch_cat


def _transactions(spec: DatasetSpec, rng: np.random.Generator, n: int, first_day: int, last_day: int, first_id: int,
                  start: datetime, customers: pd.DataFrame, merch_cat: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`n` transactions on days [first_day, last_day), ids from `first_id`, and their labels."""
    demo = spec.demo
    n_cust, n_merch = len(customers), len(merch_cat)
    # transactions: who, where, when
    cust = np.minimum(rng.zipf(1.3, n) - 1, n_cust - 1) if n_cust < 100 else rng.integers(0, n_cust, n)
    merch = rng.integers(0, n_merch, n)
    cat = merch_cat[merch]
    day = np.sort(rng.integers(first_day, last_day, n))
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    seconds = rng.integers(0, 3600, n)
    ts = (
        np.datetime64(start, "s")
        + day.astype("timedelta64[D]").astype("timedelta64[s]")
        + (hour * 3600 + seconds).astype("timedelta64[s]")
    )
    shifted = np.zeros(n, dtype=bool)
    if demo.drift.day is not None:
        shifted = day >= demo.drift.day

    online_p = customers["online_affinity"].to_numpy()[cust]
    if demo.drift.covariate:
        online_p = np.where(shifted, np.minimum(online_p + 0.3, 0.95), online_p)
    u = rng.random(n)
    channel_idx = np.where(u < online_p, 1, np.where(u < online_p + 0.08, 2, 0))
    card_present = (channel_idx != 1).astype(np.int64)
    travels = customers["travels"].to_numpy()[cust]
    foreign_p = np.where(travels, 0.35, 0.02)
    if demo.drift.covariate:
        foreign_p = np.where(shifted, foreign_p * 2.5, foreign_p)
    is_foreign = (rng.random(n) < foreign_p).astype(np.int64)
    new_device = ((channel_idx == 1) & (rng.random(n) < 0.04)).astype(np.int64)
    txn_count_1h = rng.poisson(0.4, n)
    amount_noise = rng.lognormal(0.0, 0.5, n)
    if demo.drift.covariate:
        amount_noise = np.where(shifted, amount_noise * 1.6, amount_noise)
    base = customers["avg_amount"].to_numpy()[cust] * CATEGORY_AMOUNT[cat]
    amount = base * amount_noise
    distance = np.where(is_foreign == 1, rng.lognormal(6.5, 0.8, n), rng.lognormal(2.0, 1.0, n))
    account_age = customers["account_age_days"].to_numpy()[cust] + day

    # hidden fraud: a logistic model over latent risk, calibrated to the target rate
    night = ((hour <= 4) | (hour >= 23)).astype(float)
    logit = (
        1.4 * np.log1p(amount_noise)
        + 0.7 * txn_count_1h
        + 1.6 * is_foreign * (1 - card_present)
        + 1.1 * night
        + 1.8 * new_device
        + CATEGORY_RISK[cat]
        - 0.6 * np.log1p(account_age / 365.0)
        + rng.normal(0, 0.8, n)
    )
    fraud = _calibrate(logit, demo.fraud_rate)
    if demo.drift.concept and demo.drift.day is not None:
        # a new pattern from day D: small card-present pharmacy/grocery fraud no rule knows
        new_pattern = shifted & np.isin(cat, [0, 7]) & (card_present == 1) & (rng.random(n) < 0.05)
        fraud = fraud | new_pattern
    # fraudsters push the visible signals further
    amount = np.where(fraud, amount * rng.lognormal(0.8, 0.5, n), amount)
    txn_count_1h = np.where(fraud, txn_count_1h + rng.poisson(1.2, n), txn_count_1h)

    avg = customers["avg_amount"].to_numpy()[cust]
    transactions = pd.DataFrame(
        {
            "txn_id": np.arange(first_id, first_id + n, dtype=np.int64),
            "ts": ts.astype("datetime64[us]"),
            "customer_id": cust.astype(np.int64),
            "merchant_id": merch.astype(np.int64),
            "amount": amount.round(2),
            "amount_vs_avg": (amount / avg).round(4),
            "txn_count_1h": txn_count_1h.astype(np.int64),
            "hour": hour.astype(np.int64),
            "distance_km": distance.round(1),
            "account_age_days": account_age.astype(np.int64),
            "is_foreign": is_foreign,
            "card_present": card_present,
            "new_device": new_device,
            "channel": CHANNELS[channel_idx],
            "merchant_category": CATEGORIES[cat],
        }
    )
    labels = pd.DataFrame({"txn_id": transactions["txn_id"], "label": fraud.astype(np.int64)})
    return transactions, labels


def _calibrate(logit: np.ndarray, rate: float) -> np.ndarray:
    """Shift the logits so that the expected positive rate is `rate`, then draw."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit + mid)))).mean() > rate:
            hi = mid
        else:
            lo = mid
    p = 1 / (1 + np.exp(-(logit + lo)))
    draw = np.random.default_rng(int(abs(logit[:10].sum() * 1000)) % 2**32).random(len(p))
    return draw < p


def write_demo(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, chunk_rows: int = GENERATE_CHUNK_ROWS
               ) -> tuple[dict[str, int], float]:
    """Generate the demo into the warehouse: (rows per table, positive rate). Up to `chunk_rows`
    rows it is `generate` then `write`; above, the transactions are generated and appended in
    ranges of whole days of about `chunk_rows` rows (each range seeded from the demo's seed and
    its number), all in one transaction, so memory stays that of one range at any size."""
    n = demo_rows(spec)
    if n <= chunk_rows:
        tables = generate(spec, n)
        return write(con, tables), float(tables.labels["label"].mean())
    rng, start, days, customers, merchants, merch_cat = _population(spec, n)
    ranges = -(-n // chunk_rows)
    edges = np.linspace(0, days, min(ranges, days) + 1).round().astype(int)
    sizes = rng.multinomial(n, np.diff(edges) / days)
    positives, first_id = 0, 1
    with transaction(con, _demo_customers=customers, _demo_merchants=merchants):
        con.execute("CREATE SCHEMA IF NOT EXISTS source")
        con.execute("CREATE SCHEMA IF NOT EXISTS oracle")
        con.execute("CREATE OR REPLACE TABLE source.customers AS SELECT * FROM _demo_customers")
        con.execute("CREATE OR REPLACE TABLE source.merchants AS SELECT * FROM _demo_merchants")
        counts = {"source.customers": len(customers), "source.merchants": len(merchants)}
        for part, (lo, hi, size) in enumerate(zip(edges[:-1], edges[1:], sizes, strict=True)):
            part_rng = np.random.default_rng([spec.demo.seed, part])
            transactions, labels = _transactions(spec, part_rng, int(size), int(lo), int(hi), first_id, start,
                                                 customers, merch_cat)
            for table, frame in (("source.transactions", transactions), ("oracle.labels", labels)):
                con.register("_demo_part", frame)
                try:
                    if part == 0:
                        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _demo_part")
                    else:
                        con.execute(f"INSERT INTO {table} SELECT * FROM _demo_part")
                finally:
                    con.unregister("_demo_part")
            positives += int(labels["label"].sum())
            first_id += int(size)
    counts["source.transactions"] = counts["oracle.labels"] = n
    return counts, positives / n


def write(con: duckdb.DuckDBPyConnection, tables: DemoTables) -> dict[str, int]:
    """Write the demo tables into the warehouse, each replaced atomically."""
    counts = {
        "source.customers": replace_table_from_df(con, "source.customers", tables.customers),
        "source.merchants": replace_table_from_df(con, "source.merchants", tables.merchants),
        "source.transactions": replace_table_from_df(con, "source.transactions", tables.transactions),
        "oracle.labels": replace_table_from_df(con, "oracle.labels", tables.labels),
    }
    return counts
