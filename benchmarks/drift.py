"""Drift figures for one big partition against a reference: the platform's DuckDB SQL vs pandas/scipy.

All figures of monitoring/drift.py (PSI over reference-decile bins, KS statistic and p-value,
missing shares for numerics; PSI, chi-squared, Jensen-Shannon, new categories for
categoricals) on 6 numeric and 2 categorical features, in one run:

- duckdb: `drift.stage_window` + `drift.drift_report` (the asset's code) on a warehouse file
  whose raw table holds the reference days and the partition (staging the reference is timed);
- pandas/scipy: the same figures with numpy quantiles and searchsorted bins,
  `scipy.stats.ks_2samp(method="asymp")`, `scipy.stats.chisquare`, scipy's `jensenshannon`,
  on arrays already in memory (loading is not timed for either side).

Each engine runs in its own process (peak RSS = that process's maximum resident memory,
data included); times are medians of --repeat runs. The machine is shared with other
engineers' test runs: expect noise. The issue's size: --rows 10000000 --reference-rows 1000000.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

NUMERIC = [f"x{i}" for i in range(6)]
CATEGORICAL = ["c0", "c1"]
DAY = "2026-01-20"


def make_data(folder: Path, rows: int, reference_rows: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)

    def frame(n: int, shift: float) -> pd.DataFrame:
        data = {
            "x0": rng.normal(shift, 1, n),
            "x1": rng.lognormal(1 + shift, 1, n).round(2),
            "x2": rng.poisson(2 + shift, n).astype("float64"),
            "x3": (rng.random(n) < 0.05 + shift / 10).astype("float64"),
            "x4": rng.exponential(1 + shift, n).round(1),
            "x5": np.where(rng.random(n) < 0.02 + shift / 20, np.nan, rng.uniform(0, 100, n).round(0)),
            "c0": rng.choice(["pos", "online", "atm"], n, p=[0.6 - shift / 5, 0.3 + shift / 5, 0.1]),
            "c1": rng.choice(list("abcdefgh") + (["new"] if shift else []), n),
        }
        return pd.DataFrame(data)

    frame(reference_rows, 0.0).to_parquet(folder / "reference.parquet")
    frame(rows, 0.3).to_parquet(folder / "current.parquet")


def bench_spec():  # noqa: ANN201 - a DatasetSpec
    from mlinfra_assets.spec import DEFAULT_SPEC, DatasetSpec, load_spec

    data = load_spec(DEFAULT_SPEC).model_dump()
    data["features"] = {"numeric": {c: {} for c in NUMERIC}, "categorical": {c: {} for c in CATEGORICAL}}
    data["source"]["name"] = "bench"
    data["thresholds"]["slices"] = []
    return DatasetSpec.model_validate(data)


def run_duckdb(folder: Path, repeat: int) -> tuple[list[float], pd.DataFrame]:
    import duckdb

    from mlinfra_assets.monitoring import drift

    spec = bench_spec()
    con = duckdb.connect(str(folder / "bench.duckdb"), config={"threads": 2, "memory_limit": "1536MB"})
    con.execute("CREATE SCHEMA IF NOT EXISTS training; CREATE SCHEMA IF NOT EXISTS raw")
    # raw.bench: the reference rows on the days before DAY (the days the model was trained on,
    # their ids in training.training_set), the partition's rows on DAY
    con.execute(
        "CREATE OR REPLACE TABLE raw.bench AS "
        "SELECT 'r' || row_number() OVER () AS txn_id, *, DATE '2026-01-19' AS _partition "
        "FROM read_parquet($ref) UNION ALL "
        "SELECT 'c' || row_number() OVER () AS txn_id, *, DATE '2026-01-20' AS _partition "
        "FROM read_parquet($cur)",
        {"ref": str(folder / "reference.parquet"), "cur": str(folder / "current.parquet")},
    )
    con.execute(
        "CREATE OR REPLACE TABLE training.training_set AS "
        "SELECT txn_id AS row_id, 'gold' AS source FROM raw.bench WHERE _partition < DATE '2026-01-20'"
    )
    times, report = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        drift.stage_reference(con, spec)
        window = drift.stage_window(con, spec, DAY, "2026-01-21")
        report = drift.drift_report(con, spec, window)
        times.append(time.perf_counter() - start)
    con.close()
    return times, report


def _psi(pr: np.ndarray, pc: np.ndarray, eps: float = 1e-4) -> float:
    pr, pc = np.maximum(pr, eps), np.maximum(pc, eps)
    return float(np.sum((pc - pr) * np.log(pc / pr)))


def _bins(cuts: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """Shares of the open intervals between cuts, of each cut, and of NULL (the last bin)."""
    b = 2 * np.searchsorted(cuts, values, side="left") + np.isin(values, cuts)
    counts = np.bincount(b, minlength=2 * len(cuts) + 1)
    return np.append(counts, n - len(values)) / n


def pandas_figures(ref: pd.DataFrame, cur: pd.DataFrame) -> pd.DataFrame:
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    rows = []
    for col in NUMERIC:
        r, c = ref[col].to_numpy(), cur[col].to_numpy()
        rv, cv = r[~np.isnan(r)], c[~np.isnan(c)]
        cuts = np.unique(np.quantile(rv, np.arange(1, 10) / 10))
        ks = stats.ks_2samp(rv, cv, method="asymp")
        psi = _psi(_bins(cuts, len(r), rv), _bins(cuts, len(c), cv))
        rows.append({"feature": col, "psi": psi, "ks_stat": ks.statistic,
                     "ks_pvalue": ks.pvalue, "missing_current": 1 - len(cv) / len(c)})
    for col in CATEGORICAL:
        rc = ref[col].fillna("(null)").value_counts()
        cc = cur[col].fillna("(null)").value_counts()
        cats = rc.index.union(cc.index)
        qr, qc = rc.reindex(cats, fill_value=0) / len(ref), cc.reindex(cats, fill_value=0) / len(cur)
        pr = np.maximum(qr.to_numpy(), 1e-4)
        chi = stats.chisquare(cc.reindex(cats, fill_value=0).to_numpy(), pr * len(cur), sum_check=False)
        rows.append({"feature": col, "psi": _psi(qr.to_numpy(), qc.to_numpy()), "chi2_stat": chi.statistic,
                     "chi2_pvalue": chi.pvalue, "js_divergence": jensenshannon(qr, qc, base=2) ** 2,
                     "new_categories": int((~cats.isin(rc.index)).sum())})
    return pd.DataFrame(rows)


def run_pandas(folder: Path, repeat: int) -> tuple[list[float], pd.DataFrame]:
    ref, cur = pd.read_parquet(folder / "reference.parquet"), pd.read_parquet(folder / "current.parquet")
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = pandas_figures(ref, cur)
        times.append(time.perf_counter() - start)
    return times, out


def child(engine: str, folder: Path, repeat: int) -> None:
    times, report = (run_duckdb if engine == "duckdb" else run_pandas)(folder, repeat)
    report.to_parquet(folder / f"{engine}.parquet")
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's peak across exec)
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    print(json.dumps({"times": times, "peak_mib": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the partition")
    parser.add_argument("--reference-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engine", choices=["duckdb", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        return child(args.engine, Path(args.folder), args.repeat)
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        folder = Path(tmp)
        make_data(folder, args.rows, args.reference_rows)
        results = {}
        for engine in ("duckdb", "pandas"):
            out = subprocess.run(
                [sys.executable, __file__, "--engine", engine, "--folder", tmp, "--repeat", str(args.repeat)],
                capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            results[engine] = json.loads(out.stdout.strip().splitlines()[-1])
        sql = pd.read_parquet(folder / "duckdb.parquet").set_index("feature")
        ref = pd.read_parquet(folder / "pandas.parquet").set_index("feature")
    diffs = {c: float((sql.loc[ref.index, c] - ref[c]).abs().max()) for c in ref.columns if c in sql}
    anchor = float(np.median(results["pandas"]["times"]))
    print(f"drift figures, {args.rows:,} partition rows vs {args.reference_rows:,} reference rows, "
          f"8 features (6 numeric, 2 categorical), median of {args.repeat}; shared 2-core machine")
    print("| engine | median s | speed-up vs pandas/scipy | peak RSS MiB |")
    print("|---|---|---|---|")
    for engine, label in (("pandas", "pandas + scipy (anchor)"), ("duckdb", "DuckDB SQL (drift.py)")):
        median = float(np.median(results[engine]["times"]))
        print(f"| {label} | {median:.2f} | {anchor / median:.1f}x | {results[engine]['peak_mib']:.0f} |")
    print("max |DuckDB - pandas/scipy| per figure: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))


if __name__ == "__main__":
    main()
