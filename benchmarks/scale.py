"""`mlinfra run` of the demo at several sizes: wall time, peak RSS of the whole process tree, rows/s
and each stage's seconds, with the log-log slopes (issue 19's yardstick; its targets below), and
what the run bought: the champion's holdout F1 / PR-AUC and the active-learning batch it queued.

Each size runs as a child process (`python -m mlinfra_assets.cli run --data-dir <tmp>`, the demo
at MLINFRA_DEMO_ROWS rows) in a fresh data folder; the tree's resident memory (the child and
all its descendants, VmRSS summed from /proc) is sampled every 0.25 s and its maximum kept.
Stage seconds come from the run's own step lines; `peak_step` is the step that was running when
the peak was sampled (the first step line after it: the steps run one at a time). Slopes: d log(seconds) / d log(rows) and the
same for memory between consecutive sizes (1 = linear; memory should stay under 1).

    python benchmarks/scale.py                                  # 200,000 and 1,000,000 rows
    python benchmarks/scale.py --rows 200000 1000000 --out benchmarks/results/scale.md
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP = re.compile(r"^\s+ok\s+(\S+)\s+done\s+([\d.]+) s")
TARGETS = {200_000: (None, 1.5), 1_000_000: (180.0, 2.0), 10_000_000: (1200.0, 6.0)}  # seconds, GiB


def tree_rss_bytes(root: int) -> int:
    """VmRSS of `root` and every process below it (from /proc)."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, added = {root}, True
    while added:
        new = {pid for pid, ppid in parents.items() if ppid in tree and pid not in tree}
        tree |= new
        added = bool(new)
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def run(rows: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLINFRA_")) and k != "DAGSTER_HOME"}
    with tempfile.TemporaryDirectory(prefix=f"mlinfra-scale-{rows}-") as tmp:
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "mlinfra_assets.cli", "run", "--no-replay", "--data-dir", str(Path(tmp) / "data")],
                                cwd=ROOT, env={**env, "MLINFRA_DEMO_ROWS": str(rows), "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        peak = [0, 0.0]  # bytes, when

        def sample() -> None:
            while proc.poll() is None:
                rss = tree_rss_bytes(proc.pid)
                if rss > peak[0]:
                    peak[:] = [rss, time.monotonic()]
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        lines: list[tuple[float, str]] = []  # each line of the run's output with when it came
        for line in proc.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))
        output = "\n".join(text for _, text in lines)
        proc.wait()
        seconds = time.monotonic() - start
        sampler.join()
        model = champion_figures(Path(tmp) / "data", env) if proc.returncode == 0 else {}
    if proc.returncode != 0:
        raise SystemExit(f"mlinfra run at {rows:,} rows failed ({proc.returncode}):\n{output[-3000:]}")
    stages: dict[str, float] = {}
    peak_step = "after the last step"
    for when, line in lines:
        if m := STEP.match(line):
            stage = m.group(1).split("/")[0].split("_")[0]
            stages[stage] = stages.get(stage, 0.0) + float(m.group(2))
            if when >= peak[1] and peak_step == "after the last step":
                peak_step = m.group(1)  # the steps run one at a time: the first to end after the peak held it
    return {"rows": rows, "seconds": seconds, "peak_gib": peak[0] / 2**30, "rows_per_s": rows / seconds, **stages,
            **model, "peak_step": peak_step}


def champion_figures(data_dir: Path, env: dict[str, str]) -> dict:
    """The champion's holdout F1 and PR-AUC and the annotations it learned from (`mlinfra
    status --json` of the run's data folder): what the time and memory bought."""
    done = subprocess.run([sys.executable, "-m", "mlinfra_assets.cli", "status", "--json", "--data-dir", str(data_dir)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    state = json.loads(done.stdout)
    evaluation = state["champion"]["evaluation"]
    queue = (state["stages"]["labeling"]["assets"].get("labeling/annotation_queue") or {}).get("metadata", {})
    return {"champion_f1": evaluation.get("f1"), "champion_pr_auc": evaluation.get("pr_auc"),
            "holdout_rows": evaluation.get("holdout_rows"), "queued_rows": queue.get("batch_rows")}


def verdict(r: dict) -> str:
    limit_s, limit_gib = TARGETS.get(r["rows"], (None, None))
    parts = []
    if limit_s is not None:
        parts.append(f"time < {limit_s:.0f} s: {'met' if r['seconds'] < limit_s else 'NOT met'}")
    if limit_gib is not None:
        parts.append(f"peak < {limit_gib} GiB: {'met' if r['peak_gib'] < limit_gib else 'NOT met'}")
    return "; ".join(parts) or "no target"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--out", type=Path, help="write the table (and scale.png beside it) here")
    args = parser.parse_args()
    import pandas as pd

    results = []
    for rows in args.rows:
        results.append(run(rows))
        r = results[-1]
        print(f"{rows:>12,} rows: {r['seconds']:.0f} s, peak {r['peak_gib']:.2f} GiB ({verdict(r)})", flush=True)
    table = pd.DataFrame(results).fillna(0.0)
    table["targets"] = [verdict(r) for r in results]
    slopes = []
    for a, b in zip(results, results[1:], strict=False):
        k = math.log(b["rows"] / a["rows"])
        slopes.append(f"{a['rows']:,} -> {b['rows']:,} rows: time slope {math.log(b['seconds'] / a['seconds']) / k:.2f}, "
                      f"memory slope {math.log(b['peak_gib'] / a['peak_gib']) / k:.2f}")
    text = table.to_markdown(index=False, floatfmt=".3g")
    footer = "\n".join(slopes) + (f"\n\n{datetime.date.today()}, {os.cpu_count()} cores, Python "
                                  f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f} at the end.")
    print(text)
    print(footer)
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.loglog(table["rows"], table["seconds"], "o-", label="wall seconds")
        ax.loglog(table["rows"], table["peak_gib"] * 100, "s-", label="peak RSS (GiB x 100)")
        ax.set_xlabel("demo rows")
        ax.legend()
        ax.set_title("mlinfra run: time and memory against rows")
        fig.tight_layout()
        fig.savefig(args.out.with_suffix(".png"), dpi=100)
        args.out.write_text(f"# scale benchmark (latest run)\n\nCommand:\n\n    .venv/bin/python benchmarks/scale.py "
                            f"--rows {' '.join(map(str, args.rows))} --out {args.out}\n\n{text}\n\n{footer}\n\n"
                            f"![time and memory]({args.out.with_suffix('.png').name})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
