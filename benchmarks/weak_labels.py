"""Labeling-function throughput: SQL in DuckDB and vectorized vs Snorkel's PandasLFApplier.

Runs the demo's ten LFs (each written in all three forms) on a demo raw table:
- SQL path: one DuckDB query over `rows` rows writing `labeling.label_matrix` (the write
  and the vote checks included), via the platform's `build_label_matrix`;
- vectorized path: the same rows streamed in bounded chunks through the vectorized forms,
  votes written into DuckDB;
- anchor: Snorkel's PandasLFApplier on a `snorkel_rows` sample (in memory: reading the rows
  is not counted for it, it is for the other two);
- label model: vote patterns, LabelModel fit, weak_labels written, on the SQL matrix.
The paths are measured in turns (Snorkel, SQL, query only, vectorized; `--repeat` rounds)
so that each sees the same load, and medians are reported, with the process CPU seconds
beside the wall seconds (on a shared machine the wall clock also counts waiting for a
core). `--big` adds `--big-repeat` 10M-row SQL runs, each in a child process, and reports
the median and the peak memory (peak RSS of the process). Read ratios, not decimals.

    .venv/bin/python benchmarks/weak_labels.py [--rows 1000000] [--snorkel-rows 50000] [--big]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlinfra_assets.labeling import label_model  # noqa: E402
from mlinfra_assets.labeling.lfs import load_lfs  # noqa: E402
from mlinfra_assets.labeling.matrix import build_label_matrix  # noqa: E402
from mlinfra_assets.resources import Warehouse, replace_table  # noqa: E402
from mlinfra_assets.spec import load_spec  # noqa: E402

SPEC = load_spec()
LFS = load_lfs(SPEC)


def make_raw(warehouse: Warehouse, rows: int) -> None:
    """raw.transactions with `rows` demo rows: generated up to 1M, then copied with new ids."""
    from mlinfra_assets.demo import generator as demo

    base = min(rows, 1_000_000)
    frame = demo.generate(SPEC, base).transactions
    with warehouse.connect() as con:
        con.register("gen", frame)
        copies = -(-rows // base)
        replace_table(
            con, "raw.transactions",
            f"SELECT gen.* REPLACE (txn_id + c.range * {10 ** 12} AS txn_id) FROM gen, range({copies}) AS c "
            f"ORDER BY c.range, txn_id LIMIT {rows}",
        )


def clocked(fn) -> tuple[float, float]:  # noqa: ANN001
    """Wall and process CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def snorkel_applier(warehouse: Warehouse, rows: int):  # noqa: ANN201
    """A call applying Snorkel's PandasLFApplier to the first `rows` raw rows, held in memory."""
    from snorkel.labeling import PandasLFApplier

    from mlinfra_assets.labeling.forms import lf_frame

    cols = ", ".join([SPEC.timestamp_column, *SPEC.feature_columns])
    frame = lf_frame(warehouse.query_df(f"SELECT txn_id AS row_id, {cols} FROM raw.transactions LIMIT {rows}"))
    applier = PandasLFApplier([lf.rowwise for lf in LFS.lfs])
    return lambda: applier.apply(frame, progress_bar=False)


def query_only(warehouse: Warehouse):  # noqa: ANN201
    """A call running the compiled SQL-LF query alone, aggregated instead of written: its compute cost."""
    from mlinfra_assets.labeling import sql_lfs
    from mlinfra_assets.labeling.matrix import raw_source

    def run() -> tuple[float, float]:  # the query's own clock: opening the file is not counted
        with warehouse.connect() as con:
            query = sql_lfs.matrix_sql(LFS.lfs, raw_source(con, SPEC))
            total = " + ".join(f'"{n}"' for n in LFS.names)
            return clocked(lambda: con.execute(f"SELECT sum({total}) FROM ({query})").fetchall())

    return run


def label_model_seconds(warehouse: Warehouse) -> tuple[float, int]:
    import torch  # noqa: F401 - imported before the clock starts: a process pays it once
    from snorkel.labeling.model import LabelModel  # noqa: F401

    started = time.perf_counter()
    with warehouse.connect(read_only=True) as con:
        patterns = label_model.read_patterns(con, LFS.names)
    fit = label_model.fit(patterns, LFS.names, SPEC.classes, LFS.class_balance, "lf_module",
                          SPEC.labeling.fit_rows, seed=7)
    with warehouse.connect() as con:
        con.register("p", fit.patterns)
        replace_table(con, "labeling.weak_labels", label_model.weak_labels_sql(LFS.names, SPEC.classes, "p"), [fit.version])
    return time.perf_counter() - started, fit.fit_rows


def child(db: str, form: str) -> None:
    """One label-matrix build in this process; prints seconds, CPU seconds and peak RSS as JSON."""
    started, cpu = time.perf_counter(), time.process_time()
    run = build_label_matrix(Warehouse(path=db), SPEC, LFS, form=form)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    # VmHWM: this process's peak RSS (ru_maxrss would carry the forking parent's peak over exec)
    status = Path("/proc/self/status")
    hwm = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM")] if status.exists() else []
    peak = int(hwm[0]) * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rows": run.rows, "peak_bytes": peak}))


def in_child(db: str, form: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", form, "--db", db], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--snorkel-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big", action="store_true", help="also 10M-row SQL runs with their peak memory")
    parser.add_argument("--big-repeat", type=int, default=5)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.db, args.child)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Warehouse(path=str(Path(tmp) / "bench.duckdb"))
        make_raw(warehouse, args.rows)
        snorkel = snorkel_applier(warehouse, args.snorkel_rows)
        paths = {  # each returns its wall and CPU seconds
            "snorkel": lambda: clocked(snorkel),
            "sql": lambda: clocked(lambda: build_label_matrix(warehouse, SPEC, LFS, form="sql")),
            "query": query_only(warehouse),
            "vectorized": lambda: clocked(lambda: build_label_matrix(warehouse, SPEC, LFS, form="vectorized")),
        }
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
        for _ in range(args.repeat):  # in turns: each path sees the same load
            for name, fn in paths.items():
                runs[name].append(fn())
        build_label_matrix(warehouse, SPEC, LFS, form="sql")
        lm, fit_rows = label_model_seconds(warehouse)
        memory = in_child(warehouse.path, "sql")
        wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
        table = [
            ("Snorkel PandasLFApplier (anchor)", args.snorkel_rows, wall["snorkel"], cpu["snorkel"]),
            ("SQL LFs in DuckDB, matrix written", args.rows, wall["sql"], cpu["sql"]),
            ("SQL LFs in DuckDB, query only (no write)", args.rows, wall["query"], cpu["query"]),
            ("vectorized LFs, chunks, matrix written", args.rows, wall["vectorized"], cpu["vectorized"]),
        ]
        big = []
        if args.big:
            make_raw(warehouse, 10_000_000)
            big = [in_child(warehouse.path, "sql") for _ in range(args.big_repeat)]
            table.append((f"SQL LFs in DuckDB, 10M rows (median of {len(big)} runs)", big[0]["rows"],
                          statistics.median(b["seconds"] for b in big), statistics.median(b["cpu"] for b in big)))
    anchor = args.snorkel_rows / wall["snorkel"]
    print(f"{len(LFS.lfs)} demo LFs; medians of {args.repeat} rounds; {os.cpu_count()} cores shared with other "
          f"work (load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)\n")
    print("| path | rows | seconds | CPU seconds | rows/s | x Snorkel |\n|---|---:|---:|---:|---:|---:|")
    for name, rows, seconds, cpu_s in table:
        print(f"| {name} | {rows:,} | {seconds:.3f} | {cpu_s:.3f} | {rows / seconds:,.0f} | {rows / seconds / anchor:,.0f} |")
    print(f"\nlabel model on the {args.rows:,}-row matrix (patterns, fit on {fit_rows:,} rows, weak_labels "
          f"written): {lm:.2f} s")
    print(f"peak memory (peak RSS, whole process) of a {memory['rows']:,}-row SQL run: {memory['peak_bytes'] / 2**30:.2f} GiB")
    if big:
        each = ", ".join(f"{b['seconds']:.2f}" for b in big)
        print(f"10M-row SQL runs: seconds {each}; "
              f"peak memory (peak RSS, whole process) at most {max(b['peak_bytes'] for b in big) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
