"""The SQL drift statistics against scipy (KS, chi-squared, Jensen-Shannon) and plain numpy (PSI, missing shares)."""

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlinfra_assets.monitoring import drift

DAYS = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]


def numpy_psi(reference: np.ndarray, current: np.ndarray, eps: float = drift.EPS) -> float:
    cuts = np.unique(np.quantile(reference, np.arange(1, 10) / 10))

    def bins(x: np.ndarray) -> np.ndarray:  # open intervals between cuts, and each cut itself
        return np.bincount(
            2 * np.searchsorted(cuts, x, side="left") + np.isin(x, cuts),
            minlength=2 * len(cuts) + 1,
        )

    ref, cur = bins(reference), bins(current)
    pr = np.maximum(ref / len(reference), eps)
    pc = np.maximum(cur / len(current), eps)
    return float(np.sum((pc - pr) * np.log(pc / pr)))


@pytest.fixture
def samples() -> tuple[dict[str, np.ndarray], dict[tuple[date, str], np.ndarray]]:
    rng = np.random.default_rng(3)
    reference = {
        "normal": rng.normal(0, 1, 3000),
        "integers": rng.poisson(2.0, 3000).astype(float),  # ties and duplicate deciles
        "binary": (rng.random(3000) < 0.05).astype(float),  # all deciles 0
        "skewed": rng.lognormal(1, 1, 3000).round(1),
    }
    current = {}
    for i, day in enumerate(DAYS):
        current[(day, "normal")] = rng.normal(0.25 * i, 1 + 0.2 * i, 400 + 50 * i)
        current[(day, "integers")] = rng.poisson(2.0 + i, 500).astype(float)
        current[(day, "binary")] = (rng.random(300) < 0.05 + 0.1 * i).astype(float)
        current[(day, "skewed")] = rng.lognormal(1 + 0.3 * i, 1, 350).round(1)
    return reference, current


def long_inputs(con: duckdb.DuckDBPyConnection, ref: pd.DataFrame, cur: pd.DataFrame, sql_type: str) -> list[drift.Input]:
    """Inputs over long frames `ref(feature, value)` and `cur(_partition, feature, value)`."""
    con.register("ref_long", ref)
    con.register("cur_long", cur)
    kind = "num" if sql_type == "DOUBLE" else "cat"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ref_{kind} AS SELECT feature, CAST(value AS {sql_type}) AS value FROM ref_long"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE cur_{kind} AS SELECT CAST(_partition AS DATE) AS _partition, "
        f"feature, CAST(value AS {sql_type}) AS value FROM cur_long"
    )
    return [
        drift.Input(
            f,
            f"(SELECT value FROM ref_{kind} WHERE feature = '{f}')",
            f"(SELECT _partition, value FROM cur_{kind} WHERE feature = '{f}')",
        )
        for f in sorted(set(ref["feature"]))
    ]


def load_numeric(con: duckdb.DuckDBPyConnection, reference: dict, current: dict) -> list[drift.Input]:
    ref = pd.concat([pd.DataFrame({"feature": f, "value": v}) for f, v in reference.items()])
    cur = pd.concat(
        [pd.DataFrame({"_partition": d, "feature": f, "value": v}) for (d, f), v in current.items()]
    )
    return long_inputs(con, ref, cur, "DOUBLE")


@pytest.mark.parametrize("buckets", [4, 64, drift.BUCKETS])
def test_numeric_drift_matches_scipy_and_numpy(samples, buckets, monkeypatch):
    """Exact at any bucket count: few buckets send most of them to value-level refinement
    (the KS bound), many buckets take most of them whole."""
    monkeypatch.setattr(drift, "BUCKETS", buckets)
    reference, current = samples
    con = duckdb.connect()
    inputs = load_numeric(con, reference, current)
    out = drift.numeric_drift(con, inputs).set_index(["_partition", "feature"])
    assert len(out) == len(current)
    for (day, feature), values in current.items():
        row = out.loc[(pd.Timestamp(day), feature)]
        ks = stats.ks_2samp(reference[feature], values, method="asymp")
        assert row["ks_stat"] == pytest.approx(ks.statistic, abs=1e-9)
        assert row["ks_pvalue"] == pytest.approx(ks.pvalue, rel=1e-6, abs=1e-12)
        exact = stats.ks_2samp(reference[feature], values)
        assert row["ks_pvalue"] == pytest.approx(exact.pvalue, rel=0.1, abs=1e-3)
        assert row["psi"] == pytest.approx(numpy_psi(reference[feature], values), abs=1e-9)
        assert row["reference_rows"] == len(reference[feature]) and row["current_rows"] == len(
            values
        )
    # the first day is drawn from the reference distribution, the last one is shifted
    assert out.loc[(pd.Timestamp(DAYS[0]), "normal"), "psi"] < 0.05
    assert out.loc[(pd.Timestamp(DAYS[2]), "normal"), "psi"] > 0.2
    assert (
        out.loc[(pd.Timestamp(DAYS[2]), "binary"), "psi"] > 0.2
    )  # ties do not hide a binary shift


def test_categorical_drift_matches_scipy_and_counts_new_categories():
    rng = np.random.default_rng(5)
    cats, p = np.array(["a", "b", "c", "d"]), np.array([0.4, 0.3, 0.2, 0.1])
    reference = rng.choice(cats, 5000, p=p)
    same = rng.choice(cats, 800, p=p)
    shifted = np.concatenate([rng.choice(cats, 700, p=p[::-1]), np.full(100, "new")])
    con = duckdb.connect()
    ref = pd.DataFrame({"feature": "c1", "value": reference})
    cur = pd.DataFrame(
        {
            "_partition": [DAYS[0]] * 800 + [DAYS[1]] * 800,
            "feature": "c1",
            "value": np.concatenate([same, shifted]),
        }
    )
    out = drift.categorical_drift(con, long_inputs(con, ref, cur, "VARCHAR")).set_index("_partition")
    first, second = out.loc[pd.Timestamp(DAYS[0])], out.loc[pd.Timestamp(DAYS[1])]
    observed = pd.Series(same).value_counts().reindex(cats, fill_value=0).to_numpy()
    expected = pd.Series(reference).value_counts(normalize=True).reindex(cats).to_numpy() * len(
        same
    )
    chi = stats.chisquare(observed, expected)
    assert first["chi2_stat"] == pytest.approx(chi.statistic, rel=1e-9)
    assert first["chi2_pvalue"] == pytest.approx(chi.pvalue, rel=1e-6)
    pr = pd.Series(reference).value_counts(normalize=True).reindex(cats).to_numpy()
    pc = observed / len(same)
    assert first["psi"] == pytest.approx(np.sum((pc - pr) * np.log(pc / pr)), abs=1e-9)
    assert first["new_categories"] == 0 and second["new_categories"] == 1
    for day, values in ((first, same), (second, shifted)):
        union = sorted(set(reference) | set(values))
        p_ref = pd.Series(reference).value_counts(normalize=True).reindex(union, fill_value=0)
        p_cur = pd.Series(values).value_counts(normalize=True).reindex(union, fill_value=0)
        js = jensenshannon(p_ref.to_numpy(), p_cur.to_numpy(), base=2) ** 2
        assert day["js_divergence"] == pytest.approx(js, abs=1e-12)
    assert first["psi"] < 0.05 < 0.2 < second["psi"]


def test_missing_shares_all_null_feature_and_unseen_category():
    """Bad input is reported in the figures, not raised: an all-null day, a day of new values."""
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"feature": "x", "value": np.where(rng.random(2000) < 0.1, np.nan, rng.normal(size=2000))})
    cur = pd.DataFrame(
        {
            "_partition": [DAYS[0]] * 500 + [DAYS[1]] * 300,
            "feature": "x",
            "value": np.concatenate([np.where(rng.random(500) < 0.4, np.nan, rng.normal(size=500)), np.full(300, np.nan)]),
        }
    )
    cats_ref = pd.DataFrame({"feature": "c", "value": rng.choice(["a", "b", None], 1000, p=[0.5, 0.45, 0.05])})
    cats_cur = pd.DataFrame({"_partition": DAYS[0], "feature": "c", "value": ["zz"] * 200})
    con = duckdb.connect()
    num = drift.numeric_drift(con, long_inputs(con, ref, cur, "DOUBLE")).set_index("_partition")
    first, empty = num.loc[pd.Timestamp(DAYS[0])], num.loc[pd.Timestamp(DAYS[1])]
    assert first["missing_reference"] == pytest.approx(ref["value"].isna().mean())
    assert first["missing_current"] == pytest.approx(cur["value"][:500].isna().mean())
    # the all-null day: no KS figure, every row missing, PSI high (NULL is a bin)
    assert np.isnan(empty["ks_stat"]) and np.isnan(empty["ks_pvalue"])
    assert empty["missing_current"] == 1.0 and empty["psi"] > 1.0
    [cat] = drift.categorical_drift(con, long_inputs(con, cats_ref, cats_cur, "VARCHAR")).to_dict("records")
    assert cat["new_categories"] == 1 and cat["js_divergence"] == pytest.approx(1.0)
    assert cat["missing_reference"] == pytest.approx(cats_ref["value"].isna().mean())
    assert cat["missing_current"] == 0.0 and cat["chi2_pvalue"] < 1e-12


def test_ks_pvalue_is_scipys_below_the_exact_size_and_within_its_bound_above():
    from scipy.stats.distributions import kstwo

    stat = np.linspace(0.0005, 0.08, 60)
    small = drift.ks_pvalue(stat, np.full(60, 12_000), np.full(60, 12_000))  # effective size 6,000
    np.testing.assert_allclose(small, kstwo.sf(stat, 6_000), rtol=1e-12, atol=0)
    for size in (drift.EXACT_KS_SIZE + 2, 40_000):
        n = np.full(60, 2 * size)
        stat = np.linspace(0.0002, 9 / np.sqrt(size), 60)
        large = drift.ks_pvalue(stat, n, n)
        exact = kstwo.sf(stat, size)
        assert np.max(np.abs(large - exact)) < 2.5e-6 * np.sqrt(10_000 / size)
        assert np.all(np.abs(large - exact)[exact > 1e-3] / exact[exact > 1e-3] < 5e-4)
