"""warehouse.engine: duckdb against spark (issue 20): the stages that run on Spark, timed side by
side, and the whole graph's tables compared between the two engines.

1. Stage timings. For each size and engine a child process (`engines.py --child stages ...`) in
   a fresh data folder: the demo source is generated (reported, not a stage), then one run
   materializes the raw ingest with its quarantine over all partitions, then one run the label
   matrix. A stage's seconds are the wall of its `run_assets` call. On Spark the session (the JVM
   start) is opened before the raw run, as the tests' fixture does, and timed on its own; the raw
   run's Dagster PySpark resource then gets that session back. `spark_seconds` (the raw asset's
   metadata: Spark's phases of the ingest) is reported too. The tree's resident memory (the
   child, its JVM and every other descendant, VmRSS summed from /proc) is sampled every 0.25 s by
   this process; the child marks each stage on its stdout, so the peak is also kept per stage.
   With `--repeat N` each case runs N times and the medians are shown.
2. `--equivalence ROWS`: the whole graph (`run_assets(spec, resources)`, selection "*") on
   DuckDB twice and on Spark once, each in its own child and fresh folder, then every table and
   view of the warehouses (all schemas but source and oracle, the demo's input, and lake, the
   Spark engine's file manifest) is compared: row counts, then the contents in a canonical row
   order without the columns that hold a time of the run, a duration, a run id or a path (listed
   in the output). Floats compare within 1e-9 in the drift tables and within 1e-6 elsewhere
   (predictions, probabilities). The second DuckDB run says what DuckDB alone does not repeat.

    python benchmarks/engines.py                                   # 200,000 and 1,000,000 rows
    python benchmarks/engines.py --rows 20000 200000 1000000 --equivalence 50000 \\
        --out benchmarks/results/engines.md
    python benchmarks/engines.py --rows 10000000 --no-equivalence  # the 10M case alone
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.scale import tree_rss_bytes  # noqa: E402 - VmRSS of a process and all below it (the JVM too)

ENGINES = ("duckdb", "spark")
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GX_ANALYTICS_ENABLED": "false",
         "DAGSTER_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}
SKIP_SCHEMAS = {"source", "oracle", "lake", "information_schema", "pg_catalog"}
# a column whose name says it holds a time of the run, a duration, a run id, a path or a speed
EXCLUDED = re.compile(r"(_at$|^at$|seconds|_secs?$|_s$|_ms$|latency|speed_?up|throughput|rows_per_s|per_second|"
                      r"duration|elapsed|wall|run_id|^run$|mlflow_run|path|uri$|_file$|^file$|artifact)", re.I)
DRIFT_TOLERANCE, TOLERANCE = 1e-9, 1e-6


# ----------------------------------------------------------------------------------- children

def spec_for(engine: str, rows: int):  # noqa: ANN201
    """The demo's spec (mlinfra.yaml, its drift included) at `rows`, on `engine`, Spark local[*]."""
    from mlinfra_assets.spec import DEFAULT_SPEC, DatasetSpec, load_spec

    data = load_spec(DEFAULT_SPEC).model_dump()
    data["demo"]["rows"] = rows
    data["warehouse"] = {**data["warehouse"], "engine": engine}
    data["spark"] = {**data["spark"], "master": "local[*]"}
    spec = DatasetSpec.model_validate(data)
    spec.spec_path = DEFAULT_SPEC
    return spec


def mark(phase: str) -> None:
    print(f"@phase {phase}", flush=True)


def spark_figures(result) -> dict:  # noqa: ANN001
    """The `*seconds*` metadata of the run's materializations (spark_seconds: the ingest's phases)."""
    out = {}
    for event in result.get_asset_materialization_events():
        for name, value in event.materialization.metadata.items():
            if "seconds" in name:
                out[f"{event.materialization.asset_key.to_user_string()}:{name}"] = value.value
    return out


def child_stages(engine: str, rows: int, folder: Path) -> dict:
    from mlinfra_assets import keys
    from mlinfra_assets.resources import default_resources, spark_config
    from mlinfra_assets.runner import run_assets

    spec = spec_for(engine, rows)
    resources = default_resources(folder)
    out: dict = {"engine": engine, "rows": rows}
    mark("demo")
    started = time.perf_counter()
    run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE])
    out["demo_s"] = time.perf_counter() - started
    if engine == "spark":
        mark("session")
        from pyspark.sql import SparkSession

        out["jvm_before_session"] = SparkSession.getActiveSession() is not None
        started = time.perf_counter()
        builder = SparkSession.builder
        for key, value in spark_config(spec).items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.range(1).count()  # the first job: executors (local threads) up
        out["session_s"] = time.perf_counter() - started
        out["spark_parallelism"] = session.sparkContext.defaultParallelism
    mark("raw")
    started = time.perf_counter()
    raw = run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE])
    out["raw_s"] = time.perf_counter() - started
    meta = next(m.materialization.metadata for m in raw.get_asset_materialization_events()
                if m.materialization.asset_key == keys.raw_key(spec))
    out["rows_in_window"] = meta["rows_in_window"].value
    out["rows_landed"] = meta["rows_landed"].value
    out["rows_quarantined"] = meta["rows_quarantined"].value
    out["spark_seconds"] = meta["spark_seconds"].value if "spark_seconds" in meta else {}
    mark("label_matrix")
    started = time.perf_counter()
    matrix = run_assets(spec, resources, selection=[keys.LABEL_MATRIX])
    out["label_matrix_s"] = time.perf_counter() - started
    out["matrix_rows"] = next(m.materialization.metadata["dagster/row_count"].value
                              for m in matrix.get_asset_materialization_events())
    out["matrix_figures"] = spark_figures(matrix)
    mark("end")
    return out


def child_graph(engine: str, rows: int, folder: Path) -> dict:
    from mlinfra_assets.resources import default_resources
    from mlinfra_assets.runner import run_assets

    spec = spec_for(engine, rows)
    resources = default_resources(folder)
    mark("graph")
    started = time.perf_counter()
    result = run_assets(spec, resources, raise_on_error=False)
    seconds = time.perf_counter() - started
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    errors = [str(e.event_specific_data.error.message)[:800] for e in result.all_events
              if e.event_type_value == "STEP_FAILURE"]
    mark("end")
    return {"engine": engine, "rows": rows, "graph_s": seconds, "success": result.success, "failed_steps": failed,
            "errors": errors, "warehouse": resources["warehouse"].path}


# ----------------------------------------------------------------------------------- the parent

def child(kind: str, engine: str, rows: int, folder: Path, timeout: float) -> dict:
    """Run one case in a child process; its result, its peak tree RSS, and the peak per phase."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLINFRA_")) and k != "DAGSTER_HOME"}
    folder.mkdir(parents=True, exist_ok=True)
    log = folder.parent / f"{folder.name}.log"
    with log.open("w") as err:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", kind, engine, str(rows),
                                 str(folder)], cwd=ROOT, env={**env, **QUIET}, stdout=subprocess.PIPE, stderr=err,
                                text=True)
        phase, peaks, peak = ["start"], {}, [0]

        def sample() -> None:
            while proc.poll() is None:
                rss = tree_rss_bytes(proc.pid)
                peak[0] = max(peak[0], rss)
                peaks[phase[0]] = max(peaks.get(phase[0], 0), rss)
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        result = None
        for line in proc.stdout:
            if line.startswith("@phase "):
                phase[0] = line.split()[1]
            elif line.startswith("@result "):
                result = json.loads(line[len("@result "):])
        proc.wait()
        timer.cancel()
        sampler.join()
    if proc.returncode != 0 or result is None:
        tail = log.read_text()[-4000:]
        return {"engine": engine, "rows": rows, "failed": f"exit {proc.returncode} in phase {phase[0]}"
                f"{f' (killed after {timeout:.0f} s)' if time.monotonic() - started >= timeout else ''}", "log_tail": tail,
                "peak_gib": peak[0] / 2**30, "wall_s": time.monotonic() - started}
    return {**result, "wall_s": time.monotonic() - started, "peak_gib": peak[0] / 2**30,
            "phase_peak_gib": {k: v / 2**30 for k, v in peaks.items()}}


def median_of(runs: list[dict]) -> dict:
    """The first run's record with each number replaced by the median over the runs."""
    out = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = statistics.median(r[key] for r in runs)
    out["phase_peak_gib"] = {k: statistics.median(r["phase_peak_gib"].get(k, 0.0) for r in runs)
                             for k in runs[0].get("phase_peak_gib", {})}
    out["spark_seconds"] = {k: statistics.median(r["spark_seconds"].get(k, 0.0) for r in runs)
                            for k in runs[0].get("spark_seconds", {})}
    return out


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def stage_table(results: dict[tuple[str, int], dict]) -> str:
    sizes = sorted({rows for _, rows in results})
    head = ("| rows | stage | duckdb s | spark s | spark / duckdb | duckdb rows/s | spark rows/s | "
            "duckdb peak GiB | spark peak GiB |")
    lines = [head, "|" + "---:|" * 2 + "---:|" * 7]
    lines[1] = "|---:|:---|---:|---:|---:|---:|---:|---:|---:|"
    for rows in sizes:
        duck, spark = results.get(("duckdb", rows), {}), results.get(("spark", rows), {})
        for stage, key, phase in (("demo source (not a stage)", "demo_s", "demo"),
                                  ("Spark session (JVM start)", "session_s", "session"),
                                  ("raw ingest + quarantine + GX", "raw_s", "raw"),
                                  ("label matrix", "label_matrix_s", "label_matrix"),
                                  ("raw + label matrix", None, None)):
            def secs(r: dict, key: str | None = key) -> float | None:
                if "failed" in r or not r:
                    return None
                if key is None:
                    return r["raw_s"] + r["label_matrix_s"]
                return r.get(key)

            def gib(r: dict, phase: str | None = phase) -> float | None:
                if "failed" in r or not r:
                    return r.get("peak_gib") if r else None
                return r["phase_peak_gib"].get(phase) if phase else max(
                    r["phase_peak_gib"].get("raw", 0), r["phase_peak_gib"].get("label_matrix", 0))

            d, s = secs(duck), secs(spark)
            ratio = fmt(s / d, 1) + "x" if d and s else "-"
            per_s = ["-" if not x or key == "session_s" else fmt(rows / x, 0) for x in (d, s)]
            lines.append(f"| {rows:,} | {stage} | {fmt(d)} | {fmt(s)} | {ratio} | {per_s[0]} | {per_s[1]} | "
                         f"{fmt(gib(duck), 2)} | {fmt(gib(spark), 2)} |")
        lines.append(f"| {rows:,} | **whole child, peak of the tree** | {fmt(duck.get('wall_s'))} | "
                     f"{fmt(spark.get('wall_s'))} | | | | {fmt(duck.get('peak_gib'), 2)} | {fmt(spark.get('peak_gib'), 2)} |")
    return "\n".join(lines)


def phase_table(results: dict[tuple[str, int], dict]) -> str:
    runs = [r for (engine, _), r in sorted(results.items(), key=lambda kv: kv[0][1]) if engine == "spark" and "failed" not in r]
    if not runs:
        return ""
    phases = list(dict.fromkeys(p for r in runs for p in r.get("spark_seconds", {})))
    lines = ["| rows | raw run s | " + " | ".join(f"spark_seconds.{p}" for p in phases) + " | rest of the raw run s |",
             "|---:|---:|" + "---:|" * (len(phases) + 1)]
    for r in runs:
        spent = sum(r["spark_seconds"].values())
        lines.append(f"| {r['rows']:,} | {fmt(r['raw_s'])} | " + " | ".join(fmt(r["spark_seconds"].get(p), 2) for p in phases)
                     + f" | {fmt(r['raw_s'] - spent)} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- equivalence

def tables_of(path: str) -> dict[str, str]:
    import duckdb

    with duckdb.connect(path, read_only=True) as con:
        rows = con.execute("SELECT table_schema, table_name, table_type FROM information_schema.tables "
                           "ORDER BY 1, 2").fetchall()
    return {f"{s}.{t}": kind for s, t, kind in rows if s not in SKIP_SCHEMAS}


def read_table(path: str, name: str):  # noqa: ANN201
    import duckdb

    with duckdb.connect(path, read_only=True) as con:
        frame = con.execute(f"SELECT * FROM {name}").df()
        types = {r[0]: str(r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall()}
    return frame, types


def canonical(frame, columns: list[str]):  # noqa: ANN001, ANN201
    """`frame[columns]` in an order both engines share: sorted by ids first, then every column
    (floats rounded to 6 digits for the order only, everything else as text)."""
    import pandas as pd

    ids = [c for c in columns if c in ("row_id", "txn_id", "_row_id", "id") or c.endswith("_id")]
    ordered = ids + [c for c in columns if c not in ids]
    key = pd.DataFrame(index=frame.index)
    for c in ordered:
        col = frame[c]
        if pd.api.types.is_float_dtype(col):
            key[c] = col.round(6)
        elif pd.api.types.is_integer_dtype(col) or pd.api.types.is_bool_dtype(col):
            key[c] = col
        else:
            key[c] = col.map(repr)
    order = key.sort_values(ordered, kind="mergesort", na_position="last").index if ordered else key.index
    return frame.loc[order, columns].reset_index(drop=True)


def compare_columns(a, b, tolerance: float) -> tuple[str, dict[str, str]]:  # noqa: ANN001
    """('identical' | 'within tolerance' | 'different', {column: what differs})."""
    import numpy as np
    import pandas as pd

    worst, diffs = "identical", {}
    for c in a.columns:
        x, y = a[c], b[c]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y) and not (
                pd.api.types.is_bool_dtype(x) and pd.api.types.is_bool_dtype(y)):
            xf, yf = x.to_numpy(dtype=float, na_value=np.nan), y.to_numpy(dtype=float, na_value=np.nan)
            nan_mismatch = int((np.isnan(xf) != np.isnan(yf)).sum())
            both = ~np.isnan(xf) & ~np.isnan(yf)
            gap = float(np.max(np.abs(xf[both] - yf[both]))) if both.any() else 0.0
            if nan_mismatch or gap > tolerance:
                diffs[c] = f"max abs diff {gap:.3g}, {int((np.abs(xf[both] - yf[both]) > tolerance).sum())} rows" + (
                    f", {nan_mismatch} null/non-null" if nan_mismatch else "")
                worst = "different"
            elif gap > 0:
                diffs[c] = f"max abs diff {gap:.3g}"
                worst = "within tolerance" if worst == "identical" else worst
        else:
            xs, ys = x.map(repr), y.map(repr)
            n = int((xs != ys).sum())
            if n:
                diffs[c] = f"{n} rows differ (e.g. {xs[xs != ys].iloc[0][:60]} vs {ys[xs != ys].iloc[0][:60]})"
                worst = "different"
    return worst, diffs


def compare(path_a: str, path_b: str) -> list[dict]:
    left, right = tables_of(path_a), tables_of(path_b)
    out = []
    for name in sorted(set(left) | set(right)):
        row = {"table": name, "kind": f"{left.get(name, '-')} / {right.get(name, '-')}"}
        if name not in left or name not in right:
            out.append({**row, "verdict": "only in " + ("the first" if name in left else "the second")})
            continue
        a, types_a = read_table(path_a, name)
        b, types_b = read_table(path_b, name)
        row.update(rows_a=len(a), rows_b=len(b))
        excluded = [c for c in a.columns if EXCLUDED.search(c)]
        type_diff = {c: f"{types_a[c]} vs {types_b.get(c)}" for c in types_a if types_a[c] != types_b.get(c)}
        row["excluded"] = excluded
        if list(a.columns) != list(b.columns):
            out.append({**row, "verdict": "different", "columns": {"(columns)": f"{list(a.columns)} vs {list(b.columns)}"}})
            continue
        if len(a) != len(b):
            what = f"{len(a)} vs {len(b)}"
            ids = [c for c in a.columns if c in ("row_id", "_row_id", "txn_id")]
            if ids:  # how many of the rows are the same rows
                shared = len(set(a[ids[0]].map(str)) & set(b[ids[0]].map(str)))
                what += f", {shared} {ids[0]}s in both"
            out.append({**row, "verdict": "different", "columns": {"(rows)": what}})
            continue
        kept = [c for c in a.columns if c not in excluded]
        tolerance = DRIFT_TOLERANCE if "drift" in name else TOLERANCE
        verdict, diffs = compare_columns(canonical(a, kept), canonical(b, kept), tolerance)
        if type_diff:
            diffs = {**diffs, **{f"{c} (type)": t for c, t in type_diff.items()}}
            verdict = "different" if verdict == "identical" else verdict
        out.append({**row, "verdict": verdict, "tolerance": tolerance, "columns": diffs})
    return out


def comparison_table(rows: list[dict], a: str, b: str) -> str:
    lines = [f"| table | kind | rows {a} | rows {b} | verdict | columns that differ | excluded columns |",
             "|:---|:---|---:|---:|:---|:---|:---|"]
    for r in rows:
        cols = "; ".join(f"`{c}`: {w}" for c, w in r.get("columns", {}).items()) or ""
        lines.append(f"| {r['table']} | {r['kind']} | {r.get('rows_a', '-')} | {r.get('rows_b', '-')} | {r['verdict']} | "
                     f"{cols.replace('|', '/')} | {', '.join(r.get('excluded', []))} |")
    return "\n".join(lines)


def equivalence(rows: int, root: Path, timeout: float) -> tuple[str, list[dict]]:
    runs = {}
    for name, engine in (("duckdb", "duckdb"), ("spark", "spark"), ("duckdb-again", "duckdb")):
        runs[name] = child("graph", engine, rows, root / name, timeout)
        r = runs[name]
        print(f"whole graph at {rows:,} rows on {name}: {fmt(r.get('graph_s', r['wall_s']))} s, peak "
              f"{r['peak_gib']:.2f} GiB, success {r.get('success')} {r.get('failed_steps') or ''}{r.get('failed', '')}",
              flush=True)
        if "failed" in r:
            print(r["log_tail"], flush=True)
        for error in r.get("errors", []):
            print(f"  step failure: {error}", flush=True)
    parts = ["| run | whole graph s | peak GiB | success | failed steps |", "|:---|---:|---:|:---|:---|"]
    for name, r in runs.items():
        parts.append(f"| {name} | {fmt(r.get('graph_s'))} | {r['peak_gib']:.2f} | {r.get('success', r.get('failed'))} | "
                     f"{', '.join(r.get('failed_steps', []))} |")
    text = "\n".join(parts)
    compared = []
    if all("warehouse" in r for r in runs.values()):
        for first, second in (("duckdb", "spark"), ("duckdb", "duckdb-again")):
            result = compare(runs[first]["warehouse"], runs[second]["warehouse"])
            compared.append({"pair": (first, second), "rows": result})
            text += f"\n\n{first} vs {second}:\n\n" + comparison_table(result, first, second)
    return text, compared


# ----------------------------------------------------------------------------------- main

def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[200_000, 1_000_000],
                        help="demo sizes of the stage timings (add 20000 to see Spark's fixed cost, 10000000 if you have time)")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the table shows medians")
    parser.add_argument("--equivalence", type=int, default=50_000, metavar="ROWS")
    parser.add_argument("--no-equivalence", action="store_true")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a child may run before it is killed")
    parser.add_argument("--out", type=Path, help="write the tables here (markdown)")
    parser.add_argument("--keep", action="store_true", help="keep the equivalence runs' folders (printed)")
    parser.add_argument("--json", type=Path, help="also write every figure here (JSON)")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "ENGINE", "ROWS", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, engine, rows, folder = args.child
        result = (child_stages if kind == "stages" else child_graph)(engine, int(rows), Path(folder))
        print("@result " + json.dumps(result, default=str), flush=True)
        return 0

    began, load_start = datetime.datetime.now(datetime.UTC), uptime()
    print(f"start {began:%Y-%m-%d %H:%M} UTC; {load_start}", flush=True)
    results: dict[tuple[str, int], dict] = {}
    scratch = Path(tempfile.mkdtemp(prefix="mlinfra-engines-"))
    try:
        for rows in args.rows:
            for engine in args.engines:
                runs = []
                for i in range(args.repeat):
                    r = child("stages", engine, rows, scratch / f"{engine}-{rows}-{i}", args.timeout)
                    shutil.rmtree(scratch / f"{engine}-{rows}-{i}", ignore_errors=True)
                    runs.append(r)
                    if "failed" in r:
                        print(f"{rows:>11,} rows {engine:>6}: FAILED {r['failed']} after {r['wall_s']:.0f} s, peak "
                              f"{r['peak_gib']:.2f} GiB\n{r['log_tail']}", flush=True)
                        break
                    print(f"{rows:>11,} rows {engine:>6}: demo {r['demo_s']:.1f} s, session {fmt(r.get('session_s'))} s, "
                          f"raw {r['raw_s']:.1f} s, label matrix {r['label_matrix_s']:.1f} s, peak {r['peak_gib']:.2f} GiB"
                          f"{', spark_seconds ' + json.dumps(r['spark_seconds']) if r.get('spark_seconds') else ''}",
                          flush=True)
                results[(engine, rows)] = runs[-1] if "failed" in runs[-1] else median_of(runs)
        stages = stage_table(results) if results else ""
        phases = phase_table(results)
        counts = ""
        if results:
            counts = "\n".join(f"- {rows:,} rows on {engine}: {r.get('rows_in_window', '-')} in the window, "
                               f"{r.get('rows_landed', '-')} landed, {r.get('rows_quarantined', '-')} quarantined, "
                               f"{r.get('matrix_rows', '-')} matrix rows"
                               + (f"; Spark's default parallelism {r['spark_parallelism']}" if r.get("spark_parallelism") else "")
                               for (engine, rows), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])))
        for block in (stages, phases, counts):
            if block:
                print("\n" + block, flush=True)
        equiv, compared = "", []
        if not args.no_equivalence:
            equiv, compared = equivalence(args.equivalence, scratch / "equivalence", args.timeout)
            print("\n" + equiv, flush=True)
    finally:
        if args.keep:
            print(f"kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    load_end = uptime()
    footer = (f"{began:%Y-%m-%d %H:%M} to {datetime.datetime.now(datetime.UTC):%H:%M} UTC, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, {args.repeat} run(s) per case.\nuptime at the start: {load_start}\n"
              f"uptime at the end: {load_end}")
    print("\n" + footer)
    if args.out:
        command = (f".venv/bin/python benchmarks/engines.py --rows {' '.join(map(str, args.rows))} "
                   + ("--no-equivalence" if args.no_equivalence else f"--equivalence {args.equivalence}")
                   + (f" --repeat {args.repeat}" if args.repeat != 1 else "") + f" --out {args.out}")
        body = (f"# engines benchmark: warehouse.engine duckdb vs spark (latest run)\n\nCommand:\n\n    {command}\n\n"
                f"## Stage timings\n\n{stages}\n\nSpark's phases of the raw run (the raw asset's `spark_seconds`):\n\n"
                f"{phases}\n\n{counts}\n\n## Equivalence ({args.equivalence:,} rows, whole graph)\n\n{equiv}\n\n"
                f"{footer}\n")
        args.out.write_text(body)
    if args.json:
        args.json.write_text(json.dumps({"stages": {f"{e}-{r}": v for (e, r), v in results.items()},
                                         "equivalence": compared}, default=str, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
