"""`mlinfra serve` against the same pyfunc called in-process (the anchor), in one run.

Builds the demo (`mlinfra run`, --rows rows) in a temporary folder, or takes an existing run's
--spec, starts `mlinfra serve` on 127.0.0.1 and scores raw rows of the warehouse two ways:
`mlflow.pyfunc.load_model("models:/<name>@champion").predict(frame)` in this process, and
`POST /invocations` (JSON `dataframe_split`, one kept-alive connection, one request at a time)
to the server. Batch 1 and batch 1,000; requests/s, rows/s, p50/p99 latency per request. The
client's JSON encoding is done before timing (a client has its rows in hand); the server's
parsing, schema check, scoring and answer are in the served time. Target: at batch 1,000 the
server reaches at least 50% of in-process rows/s. Peak RSS: this process (VmHWM) and the
server's (VmHWM, read before it stops). The machine is shared: compare the ratios.

    python benchmarks/serving.py                      # demo at 5,000 rows (~2 min)
    python benchmarks/serving.py --out benchmarks/results/serving.md
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
warnings.filterwarnings("ignore")
MLINFRA = [sys.executable, "-m", "mlinfra_assets.cli"]


def hwm_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(call, n: int) -> list[float]:  # noqa: ANN001 - a zero-argument callable
    call()  # warm
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def row(mode: str, batch: int, seconds: list[float]) -> dict:
    import numpy as np

    s = np.asarray(seconds)
    return {"mode": mode, "batch": batch, "requests": len(s), "requests_per_s": len(s) / s.sum(),
            "rows_per_s": batch * len(s) / s.sum(), "p50_ms": float(np.percentile(s, 50) * 1000),
            "p99_ms": float(np.percentile(s, 99) * 1000)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", help="serve this run's champion instead of building the demo")
    parser.add_argument("--data-dir", help="build the demo here and keep it (reused when it holds a champion)")
    parser.add_argument("--rows", type=int, default=5000, help="demo rows when no --spec (default 5,000)")
    parser.add_argument("--n1", type=int, default=500, help="requests at batch 1")
    parser.add_argument("--n1000", type=int, default=60, help="requests at batch 1,000")
    parser.add_argument("--out", help="write the table as markdown here")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLINFRA_")) and k != "DAGSTER_HOME"}
    tmp = tempfile.TemporaryDirectory(prefix="mlinfra-serving-")
    data_dir = Path(args.data_dir).resolve() if args.data_dir else Path(tmp.name) / "data"
    spec_args = ["--spec", args.spec] if args.spec else ["--data-dir", str(data_dir)]
    if not args.spec and not (data_dir / "mlflow.db").exists():
        started = time.monotonic()
        subprocess.run([*MLINFRA, "run", "--no-replay", *spec_args], env={**env, "MLINFRA_DEMO_ROWS": str(args.rows)},
                       check=True, stdout=subprocess.DEVNULL)
        print(f"demo at {args.rows:,} rows built in {time.monotonic() - started:.0f} s", flush=True)

    import mlflow
    import pandas as pd

    from mlinfra_assets.resources import default_resources
    from mlinfra_assets.spec import load_spec

    spec = load_spec(args.spec) if args.spec else load_spec(None)
    resources = default_resources(Path(args.spec).parent / "data" if args.spec else data_dir)
    frame = resources["warehouse"].query_df(
        f"SELECT {', '.join(spec.feature_columns)} FROM {spec.raw_table} ORDER BY {spec.id_column} LIMIT 1000")
    resources["mlflow"].activate()
    model = mlflow.pyfunc.load_model(f"models:/{spec.name}@champion")
    one, thousand = frame.head(1), frame.head(1000)
    assert len(thousand) == 1000, f"the warehouse has {len(frame)} rows: build a larger demo (--rows)"

    results = [row("in-process pyfunc", 1, timed(lambda: model.predict(one), args.n1)),
               row("in-process pyfunc", 1000, timed(lambda: model.predict(thousand), args.n1000))]

    port = free_port()
    server = subprocess.Popen([*MLINFRA, "serve", *spec_args, "--port", str(port), "--poll-s", "60"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        deadline = time.monotonic() + 180
        while True:
            try:
                conn.request("GET", "/health")
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    break
            except OSError:
                conn.close()
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlinfra serve did not start: {server.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.5)

        def post(body: bytes) -> None:
            conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {answer[:500]!r}")

        def body(df: pd.DataFrame) -> bytes:
            return json.dumps({"dataframe_split": json.loads(df.to_json(orient="split", index=False))}).encode()

        b1, b1000 = body(one), body(thousand)
        results += [row("mlinfra serve (HTTP)", 1, timed(lambda: post(b1), args.n1)),
                    row("mlinfra serve (HTTP)", 1000, timed(lambda: post(b1000), args.n1000))]
        server_mib = hwm_mib(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    table = pd.DataFrame(results)
    anchor = table[table["mode"].str.startswith("in-process")].set_index("batch")["rows_per_s"]
    table["vs_in_process"] = [r / anchor[b] for r, b in zip(table["rows_per_s"], table["batch"], strict=True)]
    ratio = float(table.loc[(table["mode"] != "in-process pyfunc") & (table["batch"] == 1000), "vs_in_process"].iloc[0])
    verdict = f"served rows/s at batch 1,000: {ratio:.0%} of in-process (target >= 50%: {'met' if ratio >= 0.5 else 'NOT met'})"
    text = table.to_markdown(index=False, floatfmt=".3g")
    footer = (f"{verdict}\n\nModel: {spec.name} (champion), {len(spec.feature_columns)} raw feature columns; "
              f"peak RSS: this process {hwm_mib():.0f} MiB, the server {server_mib:.0f} MiB; "
              f"{datetime.date.today()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"load average {os.getloadavg()[0]:.1f} at the end.")
    print(text)
    print(footer)
    if args.out:
        Path(args.out).write_text(f"# serving benchmark (latest run)\n\nCommand:\n\n    .venv/bin/python benchmarks/"
                                  f"serving.py{' --out ' + args.out}\n\n{text}\n\n{footer}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
