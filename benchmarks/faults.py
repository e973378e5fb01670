"""Fault campaign report: every bad-input fault tried, its expected outcome, what was seen, rows lost.

    .venv/bin/python benchmarks/faults.py [--out benchmarks/results/faults.md]

The same catalogue and procedure as tests/faults (which assert it); this prints the table
that the README shows.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import logging  # noqa: E402

from tests.faults.raw_input import FAULTS, clean_frame, try_fault  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.ERROR)
    clean = clean_frame()
    lines = [
        "| # | fault | expected outcome | outcome seen | rows in | rows lost | as expected |",
        "|---|---|---|---|---|---|---|",
    ]
    started = time.monotonic()
    failures = 0
    for i, fault in enumerate(FAULTS, 1):
        with tempfile.TemporaryDirectory() as tmp:
            o = try_fault(fault, clean, Path(tmp))
        failures += (not o.ok) or o.rows_lost != 0
        seen = o.seen.replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {i} | {o.fault} | {o.expected} | {seen} | {o.rows_in} | {o.rows_lost} | {'yes' if o.ok else 'NO'} |"
        )
    table = "\n".join(lines)
    summary = (
        f"\n{len(FAULTS)} faults, {len(FAULTS) - failures} as expected, "
        f"rows lost in total: 0 required; {time.monotonic() - started:.0f} s"
    )
    print(table + summary)
    if args.out:
        args.out.write_text(f"# Fault campaign: bad raw input\n\n{table}\n{summary}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
