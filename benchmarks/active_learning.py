"""Active learning vs random: learning curves and labels needed, plus a 1M-row query timing.

On the demo (oracle labels, holdout = every 10th row): each strategy starts from the same
few labeled rows, asks `--batch` rows per round, retrains, and is scored (F1 of the fraud
class on the holdout) after each round, `--seeds` seeds each. The anchor is random
sampling in the same run; F1 is the best F1 over thresholds; the target is 95% of the F1 the same model reaches with every
pool label. Then one query over a `--pool-rows` DuckDB table, streamed in chunks, in a
fresh process (time and its peak memory).

    .venv/bin/python benchmarks/active_learning.py [--rows 40000] [--budget 1000] [--pool-rows 1000000]

The machine is shared (other engineers run tests): times are noisy.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlinfra_assets.labeling import active, strategies  # noqa: E402
from mlinfra_assets.spec import load_spec  # noqa: E402
from mlinfra_assets.warehouse import demo  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SEED_PER_CLASS = 5  # the cold start: this many oracle labels of each class


def load(spec, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = demo.generate(spec, rows=rows)
    df = tables.transactions.merge(tables.labels, on="txn_id").rename(columns={"txn_id": "row_id"})
    holdout = df["row_id"] % 10 == 0
    return df[~holdout].reset_index(drop=True), df[holdout].reset_index(drop=True)


def f1(fitted: strategies.Fitted, test: pd.DataFrame, spec) -> float:
    """Best F1 of the fraud class over thresholds (the balanced learner is not calibrated,
    so a fixed 0.5 cut would measure calibration, not what the labels taught)."""
    from sklearn.metrics import precision_recall_curve

    score = fitted.proba(test[spec.feature_columns])[:, spec.positive_index]
    p, r, _ = precision_recall_curve(test["label"] == spec.positive_index, score)
    return float(np.max(2 * p * r / np.maximum(p + r, 1e-12)))


def curve(spec, pool: pd.DataFrame, test: pd.DataFrame, strategy: str, seed: int, budget: int, batch: int) -> list[tuple[int, float]]:
    rng = np.random.default_rng(seed)
    start = np.concatenate([rng.choice(np.flatnonzero(pool["label"] == k), SEED_PER_CLASS, replace=False) for k in range(spec.n_classes)])
    labeled = np.zeros(len(pool), dtype=bool)
    labeled[start] = True
    points = []
    while True:
        lab = pool[labeled]
        fitted = strategies.fit(spec, strategy, lab[spec.feature_columns], lab["label"].to_numpy(), seed)
        points.append((int(labeled.sum()), f1(fitted, test, spec)))
        if labeled.sum() >= budget:
            return points
        rest = pool[~labeled]
        fitted.seed = seed * 1000 + len(points)  # a fresh random draw each round for the baseline
        chosen = strategies.select(fitted, [rest[["row_id", *spec.feature_columns]]], batch).batch
        labeled |= pool["row_id"].isin(chosen["row_id"]).to_numpy()


def needed(points: list[tuple[int, float]], target: float) -> float:
    return next((float(n) for n, f in points if f >= target), float("nan"))


def query_timing(path: str, spec_path: str) -> tuple[float, float]:
    """One chunked query over the pool table (run in a fresh process): seconds, peak RSS in MB."""
    import duckdb

    spec = load_spec(spec_path)
    con = duckdb.connect(path, read_only=True)
    seed_rows = con.execute("SELECT * FROM seed").df()
    t0 = time.perf_counter()
    cols = ", ".join(["row_id", *spec.feature_columns])
    reader = con.sql(f"SELECT {cols} FROM pool").to_arrow_reader(active.CHUNK_ROWS)
    result = active.query_batch(spec, seed_rows, (b.to_pandas() for b in reader), 300, "uncertainty", 7)
    took = time.perf_counter() - t0
    assert len(result.batch) == 300 and result.pool_rows > 0
    return took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timing(spec, rows: int) -> tuple[float, float, int]:
    import duckdb

    df = demo.generate(spec, rows=rows).transactions.rename(columns={"txn_id": "row_id"})
    labels = demo.generate(spec, rows=20_000).labels
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "pool.duckdb")
        con = duckdb.connect(path)
        con.execute("SET enable_progress_bar = false")
        con.register("df", df)
        con.execute("CREATE TABLE pool AS SELECT * FROM df")
        small = demo.generate(spec, rows=20_000).transactions.merge(labels, on="txn_id").rename(columns={"txn_id": "row_id"})
        con.register("small", small)
        con.execute("CREATE TABLE seed AS SELECT * FROM small")
        con.close()
        del df
        with mp.get_context("spawn").Pool(1) as p:
            took, rss = p.apply(query_timing, (path, str(ROOT / "mlinfra.yaml")))
    return took, rss, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=40_000, help="demo rows (90% pool, 10% holdout)")
    ap.add_argument("--budget", type=int, default=1000, help="labels per learning curve")
    ap.add_argument("--batch", type=int, default=50, help="rows asked per round")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--random-budget-factor", type=int, default=4, help="random's budget = this x --budget")
    ap.add_argument("--pool-rows", type=int, default=1_000_000, help="rows of the query-timing pool (0: skip)")
    ap.add_argument("--strategies", default=",".join(strategies.STRATEGIES))
    args = ap.parse_args()
    spec = load_spec(ROOT / "mlinfra.yaml")
    pool, test = load(spec, args.rows)
    full = strategies.fit(spec, "uncertainty", pool[spec.feature_columns], pool["label"].to_numpy(), 0)
    f1_all = f1(full, test, spec)
    target = 0.95 * f1_all
    print(f"demo {args.rows} rows: pool {len(pool)} ({int(pool['label'].sum())} fraud), holdout {len(test)}; "
          f"F1 with all {len(pool)} pool labels {f1_all:.3f}, target {target:.3f}")
    curves, rows = {}, []
    for strategy in args.strategies.split(","):
        t0 = time.perf_counter()
        # the anchor gets a bigger budget, so the labels it needs are measured, not bounded
        budget = args.budget * (args.random_budget_factor if strategy == "random" else 1)
        runs = [curve(spec, pool, test, strategy, s, budget, args.batch) for s in range(args.seeds)]
        curves[strategy] = runs
        # a seed that never reaches the target counts as needing more than its budget (inf)
        need = [needed(r, target) if not np.isnan(needed(r, target)) else np.inf for r in runs]
        rows.append({"strategy": strategy, "budget": budget, "labels_needed_median": float(np.median(need)),
                     "seeds_reaching_target": int(np.sum(np.isfinite(need))), "f1_at_budget_median": float(np.median([r[-1][1] for r in runs])),
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(f"  {strategy:<13} {rows[-1]}", flush=True)
    table = pd.DataFrame(rows)
    rand = table.set_index("strategy").loc["random", "labels_needed_median"] if "random" in table["strategy"].values else np.nan
    table["random_labels_over_strategy"] = rand / table["labels_needed_median"]  # inf / inf = NaN: not measured
    lines = [f"Active learning on the demo ({args.rows} rows, {args.seeds} seeds, batch {args.batch}, budget {args.budget}, "
             f"cold start {SEED_PER_CLASS} labels per class). Target: 95% of the all-labels F1 ({f1_all:.3f}) = {target:.3f}. "
             "Medians over seeds; a seed that does not reach the target within its budget counts as inf.", "",
             table.round(3).to_markdown(index=False)]
    if args.pool_rows:
        took, rss, n = timing(spec, args.pool_rows)
        lines += ["", f"Query of a {n:,}-row DuckDB pool (uncertainty, chunks of {active.CHUNK_ROWS:,} rows, fresh process): "
                  f"{took:.1f} s, peak RSS {rss:.0f} MB. Shared, noisy 2-core machine."]
    text = "\n".join(lines)
    print("\n" + text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "active_learning.md").write_text(text + "\n")
    plot(curves, f1_all, target, RESULTS / "active_learning.png", 2 * args.budget)


def plot(curves: dict, f1_all: float, target: float, path: Path, xmax: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=80)
    for k, (strategy, runs) in enumerate(curves.items()):
        n = [p[0] for p in runs[0]]
        f = np.median([[p[1] for p in r] for r in runs], axis=0)
        ax.plot(n, f, label=strategy, color=f"C{k}", lw=2 if strategy == "random" else 1.2, ls="--" if strategy == "random" else "-")
    ax.axhline(f1_all, color="k", lw=0.8, label="all labels")
    ax.axhline(target, color="grey", lw=0.8, ls=":", label="95% target")
    ax.set_xlim(0, xmax)
    ax.set_xlabel("labels")
    ax.set_ylabel("F1 (fraud, holdout)")
    ax.legend(fontsize=7)
    ax.set_title("Learning curves (median of seeds)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
