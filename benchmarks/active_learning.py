"""Active learning vs random: learning curves and labels needed, plus pool-query scaling.

On the demo (oracle labels, holdout = every 10th row): each strategy starts from the same
few labeled rows, asks `--batch` rows per round, retrains, and is scored (F1 of the fraud
class on the holdout) after each round, `--seeds` seeds each. The anchor is random
sampling in the same run; F1 is the best F1 over thresholds; the target is 95% of the F1 the same model reaches with every
pool label.

Then the queue's query scaling: for each `--query-sizes` pool (a temporary DuckDB file
shaped like the warehouse: the raw table, some rows already annotated or queued), each
`--query-strategies` strategy queries a batch in a fresh process, exactly as the
annotation_queue asset does (pool.sql streamed as Arrow record batches of
`active.CHUNK_ROWS` rows); it prints seconds and peak RSS per size. The query's own
memory is bounded by the chunk and the batch, so it stays flat while the pool grows 16x;
DuckDB's block cache of the scanned table (bounded by the warehouse's memory_limit) is
shown apart.

    .venv/bin/python benchmarks/active_learning.py [--rows 40000] [--budget 1000]
        [--query-sizes 250000,1000000,4000000] [--query-strategies uncertainty,ranked_batch]
    .venv/bin/python benchmarks/active_learning.py --query-only   # the scaling part only (results file untouched)

The machine is shared (other engineers run tests): times are noisy.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlinfra_assets.demo import generator as demo  # noqa: E402
from mlinfra_assets.labeling import active, strategies  # noqa: E402
from mlinfra_assets.labeling.queries import WHOLE_POOL, load_sql, sql_identifiers  # noqa: E402
from mlinfra_assets.spec import load_spec  # noqa: E402

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
        # random draws rows without a learner: the same learner as the others scores its labels
        scorer = fitted if fitted.learner is not None else strategies.fit(
            spec, "uncertainty", lab[spec.feature_columns], lab["label"].to_numpy(), seed)
        points.append((int(labeled.sum()), f1(scorer, test, spec)))
        if labeled.sum() >= budget:
            return points
        rest = pool[~labeled]
        fitted.seed = seed * 1000 + len(points)  # a fresh random draw each round for the baseline
        chosen = strategies.select(fitted, [rest[["row_id", *spec.feature_columns]]], batch).batch
        labeled |= pool["row_id"].isin(chosen["row_id"]).to_numpy()


def needed(points: list[tuple[int, float]], target: float) -> float:
    return next((float(n) for n, f in points if f >= target), float("nan"))


QUERY_BATCH = 300  # the demo spec's active_learning.batch_size
PART_ROWS = 250_000  # pools are built from demo parts of this size, each with its own seed
EXCLUDED_ROWS = 1_000  # pool rows already annotated, and as many already queued


def build_pool(spec, path: str, rows: int) -> None:
    """A warehouse-shaped DuckDB file: `rows` raw rows (demo parts with their own seeds),
    the first EXCLUDED_ROWS non-holdout rows annotated and the next as many queued, and a
    labeled seed table (a separate 20k-row demo)."""
    import duckdb

    ids = sql_identifiers(spec)
    con = duckdb.connect(path)
    con.execute("SET enable_progress_bar = false")
    con.execute(f"CREATE SCHEMA {spec.raw_table.split('.')[0]}")
    for k, start in enumerate(range(0, rows, PART_ROWS)):
        part_spec = spec.model_copy(update={"demo": spec.demo.model_copy(update={"seed": spec.demo.seed + k})})
        part = demo.generate(part_spec, rows=min(PART_ROWS, rows - start)).transactions
        part[spec.id_column] += start  # the demo's ids are 1..n: 1..rows over the parts
        con.register("part", part)
        verb = f"CREATE TABLE {spec.raw_table} AS" if k == 0 else f"INSERT INTO {spec.raw_table}"
        con.execute(f"{verb} SELECT * FROM part")
        con.unregister("part")
    con.execute(load_sql("annotations_table", **ids))
    con.execute(load_sql("queue_table", **ids))
    free = f"SELECT r.{spec.id_column} FROM {spec.raw_table} AS r WHERE NOT {ids['holdout']} ORDER BY 1"
    con.execute(f"INSERT INTO labeling.annotations (row_id, label) SELECT {spec.id_column}, 0 FROM ({free}) LIMIT ?",
                [EXCLUDED_ROWS])
    con.execute(f"INSERT INTO labeling.annotation_queue (row_id, status) SELECT {spec.id_column}, 'pending' FROM ({free}) "
                f"WHERE {spec.id_column} NOT IN (SELECT row_id FROM labeling.annotations) LIMIT ?", [EXCLUDED_ROWS])
    seed_demo = demo.generate(spec, rows=20_000)
    seed = seed_demo.transactions.merge(seed_demo.labels, on=spec.id_column).rename(columns={spec.id_column: "row_id"})
    con.register("seed_df", seed)
    con.execute("CREATE TABLE seed AS SELECT * FROM seed_df")
    con.close()


def _memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process from /proc. Not getrusage's ru_maxrss: Linux
    carries the forking parent's peak across exec into it, so a spawned child would report the
    benchmark's own peak (the pool generation) instead of its own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}: the query scaling measures memory on Linux only")


def query_timing(path: str, spec_path: str, strategy: str) -> dict:
    """One queue query over the pool file, as the asset runs it (run in a fresh process).

    modAL (which imports torch) and scikit-learn are imported first: once per process, a
    cost that does not depend on the pool (import_s, and in rss_before_query_mb).
    """
    from mlinfra_assets.resources import Warehouse

    t0 = time.perf_counter()
    import modAL.batch  # noqa: F401
    import modAL.disagreement  # noqa: F401
    import modAL.models  # noqa: F401
    import modAL.uncertainty  # noqa: F401
    import sklearn.compose  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    import_s = time.perf_counter() - t0
    spec = load_spec(spec_path)
    with Warehouse(path=path).connect(read_only=True) as con:
        con.execute("SET enable_progress_bar = false")
        seed_df = con.execute("SELECT * FROM seed").df()
        seed_rows = active.seed_set(seed_df.iloc[:0], seed_df, spec.classes, spec.training.seed)
        excluded = {r[0] for r in con.execute(
            "SELECT row_id FROM labeling.annotations UNION SELECT row_id FROM labeling.annotation_queue").fetchall()}
        rss_before = _memory_mb("VmRSS")
        t0 = time.perf_counter()
        relation = con.sql(load_sql("pool", **sql_identifiers(spec)), params=WHOLE_POOL)
        chunks = (b.to_pandas() for b in relation.to_arrow_reader(active.CHUNK_ROWS))
        result = active.query_batch(spec, seed_rows, chunks, QUERY_BATCH, strategy, spec.training.seed)
        took = time.perf_counter() - t0
        peak = _memory_mb("VmHWM")
        duckdb_mb = con.execute("SELECT sum(memory_usage_bytes) / 2^20 FROM duckdb_memory()").fetchall()[0][0]
    assert len(result.batch) == QUERY_BATCH and result.batch["row_id"].is_unique
    assert not excluded & set(result.batch["row_id"]), "an annotated or queued row was queued again"
    return {"strategy": strategy, "pool_rows": result.pool_rows, "seconds": round(took, 2), "import_s": round(import_s, 1),
            "peak_rss_mb": round(peak), "rss_before_query_mb": round(rss_before),
            "duckdb_buffer_mb": round(float(duckdb_mb or 0)), "query_own_mb": round(peak - rss_before - float(duckdb_mb or 0))}


def query_scaling(spec, sizes: list[int], strategies_: list[str], repeats: int) -> pd.DataFrame:
    """Each pool size, each strategy: `repeats` queries, each in a fresh (spawned) process; medians."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = str(Path(tmp) / f"pool_{size}.duckdb")
            t0 = time.perf_counter()
            build_pool(spec, path, size)
            print(f"  pool of {size:,} rows built in {time.perf_counter() - t0:.0f} s", flush=True)
            for strategy in strategies_:
                for _ in range(repeats):
                    with mp.get_context("spawn").Pool(1) as p:
                        row = p.apply(query_timing, (path, str(ROOT / "mlinfra.yaml"), strategy))
                    rows.append({"table_rows": size, **row})
                    print(f"  {rows[-1]}", flush=True)
            Path(path).unlink()
    runs = pd.DataFrame(rows)
    return runs.groupby(["table_rows", "strategy", "pool_rows"], sort=False).median().reset_index()


def scaling_lines(table: pd.DataFrame, repeats: int) -> list[str]:
    lines = [f"Queue query scaling (batch {QUERY_BATCH}, chunks of {active.CHUNK_ROWS:,} rows, warehouse DuckDB settings; "
             f"{EXCLUDED_ROWS:,} rows annotated and {EXCLUDED_ROWS:,} queued are never offered; pool_rows = table rows "
             f"less holdout and those). Medians of {repeats} queries, each in a fresh process. seconds: fit + streamed "
             "scoring + batch; import_s: modAL (it imports torch) and scikit-learn, once per process, before it. "
             "rss_before_query: with those and the seed rows loaded. duckdb_buffer: DuckDB's block cache of the "
             "scanned table at the end (~13 bytes a table row, compressed; bounded by the warehouse's memory_limit, "
             "freed when the connection closes). query_own: peak RSS less rss_before_query less duckdb_buffer, the "
             "query's own memory (one chunk's working set, the kept candidates, the score sample). "
             "Shared, noisy 2-core machine.", "",
             table.round(2).to_markdown(index=False), ""]
    for strategy, t in table.groupby("strategy", sort=False):
        lo, hi = t.iloc[0], t.iloc[-1]
        lines.append(f"- {strategy}: {hi.table_rows / lo.table_rows:.0f}x the rows: {hi.seconds / lo.seconds:.1f}x the "
                     f"time (import_s, the same work in every run, x{hi.import_s / lo.import_s:.1f}: the machine's load), peak RSS x{hi.peak_rss_mb / lo.peak_rss_mb:.2f} ({lo.peak_rss_mb:.0f} -> {hi.peak_rss_mb:.0f} MB): "
                     f"the query's own memory {lo.query_own_mb:.0f} -> {hi.query_own_mb:.0f} MB, "
                     f"DuckDB's cache {lo.duckdb_buffer_mb:.0f} -> {hi.duckdb_buffer_mb:.0f} MB")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=40_000, help="demo rows (90%% pool, 10%% holdout)")
    ap.add_argument("--budget", type=int, default=1000, help="labels per learning curve")
    ap.add_argument("--batch", type=int, default=50, help="rows asked per round")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--random-budget-factor", type=int, default=4, help="random's budget = this x --budget")
    ap.add_argument("--strategies", default=",".join(strategies.STRATEGIES))
    ap.add_argument("--query-sizes", default="250000,1000000,4000000", help="pool rows of the query scaling ('': skip)")
    ap.add_argument("--query-strategies", default="uncertainty,ranked_batch")
    ap.add_argument("--query-repeats", type=int, default=3, help="fresh-process queries per size and strategy (median)")
    ap.add_argument("--query-only", action="store_true", help="only the query scaling; the results file is left as is")
    args = ap.parse_args()
    spec = load_spec(ROOT / "mlinfra.yaml")
    sizes = [int(x) for x in args.query_sizes.split(",") if x]
    if args.query_only:
        table = query_scaling(spec, sizes, args.query_strategies.split(","), args.query_repeats)
        print("\n".join(scaling_lines(table, args.query_repeats)))
        return
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
    if sizes:
        table = query_scaling(spec, sizes, args.query_strategies.split(","), args.query_repeats)
        lines += ["", *scaling_lines(table, args.query_repeats)]
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
