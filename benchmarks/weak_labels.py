"""Labeling-function throughput: SQL in DuckDB and vectorized vs Snorkel's PandasLFApplier.

Runs the demo's ten LFs (each written in all three forms) on a demo raw table:
- SQL path: one DuckDB query over `rows` rows writing `labeling.label_matrix` (the write
  and the vote checks included), via the platform's `build_label_matrix`;
- vectorized path: the same rows streamed in bounded chunks through the vectorized forms,
  votes written into DuckDB;
- anchor: Snorkel's PandasLFApplier on a `snorkel_rows` sample (in memory: reading the rows
  is not counted for it, it is for the other two);
- label model: vote patterns, LabelModel fit, weak_labels written, on the SQL matrix.
Medians of `--repeat` runs. `--big` adds a 10M-row SQL run in a child process and reports
its peak memory (peak RSS of the process). The machine is shared and noisy: read ratios, not decimals.

    .venv/bin/python benchmarks/weak_labels.py [--rows 1000000] [--snorkel-rows 50000] [--big]
"""

from __future__ import annotations

import argparse
import json
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
    from mlinfra_assets.warehouse import demo

    base = min(rows, 1_000_000)
    frame = demo.generate(SPEC, base).transactions
    with warehouse.connect() as con:
        con.register("gen", frame)
        copies = -(-rows // base)
        replace_table(
            con, "raw.transactions",
            f"SELECT * REPLACE (txn_id + c.range * {10 ** 12} AS txn_id) FROM gen, range({copies}) AS c "
            f"ORDER BY c.range, txn_id LIMIT {rows}",
        )


def timed(fn, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def snorkel_seconds(warehouse: Warehouse, rows: int, repeat: int) -> float:
    from snorkel.labeling import PandasLFApplier

    from mlinfra_assets.labeling.forms import lf_frame

    cols = ", ".join([SPEC.timestamp_column, *SPEC.feature_columns])
    frame = lf_frame(warehouse.query_df(f"SELECT txn_id AS row_id, {cols} FROM raw.transactions LIMIT {rows}"))
    applier = PandasLFApplier([lf.rowwise for lf in LFS.lfs])
    return timed(lambda: applier.apply(frame, progress_bar=False), repeat)


def query_only_seconds(warehouse: Warehouse, repeat: int) -> float:
    """The compiled SQL-LF query alone, aggregated instead of written: its compute cost."""
    from mlinfra_assets.labeling import sql_lfs
    from mlinfra_assets.labeling.matrix import raw_source

    with warehouse.connect(read_only=True) as con:
        query = sql_lfs.checked_sql(LFS.lfs, raw_source(con, SPEC), SPEC.n_classes)
        total = " + ".join(f'"{n}"' for n in LFS.names)
        return timed(lambda: con.execute(f"SELECT sum({total}) FROM ({query})").fetchall(), repeat)


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
    """One label-matrix build in this process; prints seconds and peak RSS as JSON."""
    started = time.perf_counter()
    run = build_label_matrix(Warehouse(path=db), SPEC, LFS, form=form)
    seconds = time.perf_counter() - started
    # VmHWM: this process's peak RSS (ru_maxrss would carry the forking parent's peak over exec)
    status = Path("/proc/self/status")
    hwm = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM")] if status.exists() else []
    peak = int(hwm[0]) * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "rows": run.rows, "peak_bytes": peak}))


def in_child(db: str, form: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", form, "--db", db], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--snorkel-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also a 10M-row SQL run with its peak memory")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.db, args.child)
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Warehouse(path=str(Path(tmp) / "bench.duckdb"))
        make_raw(warehouse, args.rows)
        snorkel = snorkel_seconds(warehouse, args.snorkel_rows, args.repeat)
        sql = timed(lambda: build_label_matrix(warehouse, SPEC, LFS, form="sql"), args.repeat)
        query = query_only_seconds(warehouse, args.repeat)
        vec = timed(lambda: build_label_matrix(warehouse, SPEC, LFS, form="vectorized"), args.repeat)
        build_label_matrix(warehouse, SPEC, LFS, form="sql")
        lm, fit_rows = label_model_seconds(warehouse)
        memory = in_child(warehouse.path, "sql")
        anchor = args.snorkel_rows / snorkel
        table = [
            ("Snorkel PandasLFApplier (anchor)", args.snorkel_rows, snorkel),
            ("SQL LFs in DuckDB, matrix written", args.rows, sql),
            ("SQL LFs in DuckDB, query only (no write)", args.rows, query),
            ("vectorized LFs, chunks, matrix written", args.rows, vec),
        ]
        big = None
        if args.big:
            make_raw(warehouse, 10_000_000)
            big = in_child(warehouse.path, "sql")
            table.append(("SQL LFs in DuckDB, 10M rows", big["rows"], big["seconds"]))
    print(f"{len(LFS.lfs)} demo LFs; medians of {args.repeat} runs; shared 2-core machine (noisy)\n")
    print("| path | rows | seconds | rows/s | x Snorkel |\n|---|---:|---:|---:|---:|")
    for name, rows, seconds in table:
        print(f"| {name} | {rows:,} | {seconds:.3f} | {rows / seconds:,.0f} | {rows / seconds / anchor:,.0f} |")
    print(f"\nlabel model on the {args.rows:,}-row matrix (patterns, fit on {fit_rows:,} rows, weak_labels "
          f"written): {lm:.2f} s")
    print(f"peak memory (peak RSS, whole process) of a {memory['rows']:,}-row SQL run: {memory['peak_bytes'] / 2**30:.2f} GiB")
    if big:
        print(f"peak memory (peak RSS, whole process) of the 10M-row SQL run: {big['peak_bytes'] / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
