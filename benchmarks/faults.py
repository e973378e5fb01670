"""Fault campaign report: every fault tried, its expected outcome, what was seen, rows lost.

    .venv/bin/python benchmarks/faults.py [--out benchmarks/results/faults.md] [--skip-raw]

Three tables: bad raw input (34 faults), concurrency (five retraining runs under the
multiprocess executor with an analyst query loop), security (secrets, bind addresses,
annotation names, LF modules). The same catalogues and procedures as tests/faults (which
assert them, the secret sweep there also through a real run against Label Studio and an
mlflow server); this prints the tables that the README shows.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import logging  # noqa: E402

from tests.faults.raw_input import FAULTS, clean_frame, try_fault  # noqa: E402


def raw_input_table() -> tuple[list[str], int, int]:
    clean = clean_frame()
    lines = [
        "| # | fault | expected outcome | outcome seen | rows in | rows lost | as expected |",
        "|---|---|---|---|---|---|---|",
    ]
    failures = 0
    for i, fault in enumerate(FAULTS, 1):
        with tempfile.TemporaryDirectory() as tmp:
            o = try_fault(fault, clean, Path(tmp))
        failures += (not o.ok) or o.rows_lost != 0
        seen = o.seen.replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {i} | {o.fault} | {o.expected} | {seen} | {o.rows_in} | {o.rows_lost} | {'yes' if o.ok else 'NO'} |"
        )
    return lines, len(FAULTS), failures


def _row(rows: list, fault: str, expected: str, seen: str, lost: int | str, ok: bool) -> None:
    rows.append((fault, expected, seen.replace("|", "/").replace("\n", " "), lost, ok))


def concurrency_rows() -> list:
    from tests.faults.concurrency import RUNS, build_demo, campaign

    rows: list = []
    with tempfile.TemporaryDirectory() as tmp:
        o = campaign(build_demo(Path(tmp)))
    ok_runs = sum(r["status"] == "SUCCESS" for r in o.runs)
    _row(rows, f"{RUNS} retraining runs, multiprocess executor, {o.at_once} in flight at a time "
         "(max_concurrent_runs of dagster.yaml)",
         f"{RUNS} of {RUNS} succeed, {o.at_once} at once, all but the last overlap another",
         f"{ok_runs} of {len(o.runs)} succeeded in {o.seconds:.0f} s; at most {o.max_runs_at_once} at once; "
         f"overlap per run {', '.join(f'{s:.0f}' for s in o.overlap_s)} s; "
         f"{o.versions_registered} versions registered",
         o.rows_lost, ok_runs == RUNS and o.max_runs_at_once == o.at_once
         and sum(s > 0 for s in o.overlap_s) >= RUNS - 1 and o.versions_registered == RUNS)
    _row(rows, "DuckDB lock errors in run logs and event logs", "0",
         f"{len(o.lock_errors)}" + (f": {o.lock_errors[0][:120]}" if o.lock_errors else ""), 0, not o.lock_errors)
    _row(rows, "steps of all runs executing at one instant (`warehouse` pool)", "1",
         str(o.max_steps_at_once), 0, o.max_steps_at_once == 1)
    bad = len(o.calls) - o.count("rows") - o.count("busy")
    _row(rows, "analyst loop of `mlinfra query` during the runs",
         "rows or `busy: warehouse ... try again` (exit 3), no traceback",
         f"{len(o.calls)} calls: {o.count('rows')} rows, {o.count('busy')} wait message, "
         f"{o.count('traceback')} tracebacks, {bad} other; median "
         f"{sorted(c.seconds for c in o.calls)[len(o.calls) // 2] if o.calls else 0:.1f} s a call",
         0, bool(o.calls) and bad == 0)
    return rows


def security_rows() -> list:
    from mlinfra_assets.definitions import build_definitions
    from mlinfra_assets.labeling.annotations import AnnotationFileError, inbox_file
    from mlinfra_assets.resources import API_KEY_VAR, default_resources
    from mlinfra_assets.spec import PROJECT_ROOT, SpecError, load_spec
    from tests.faults.concurrency import small_demo_spec
    from tests.faults.security import BAD_ANNOTATION_NAMES, BAD_LF_MODULES, make_ui_command
    from tests.servers import free_port, http_ok, serve

    rows: list = []
    key, password = "sentinelApiKey" + "7" * 26, "sentinelTrackingPw93"
    saved = {k: os.environ.get(k) for k in (API_KEY_VAR, "MLFLOW_TRACKING_URI", "LABEL_STUDIO_URL",
                                           "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    try:
        os.environ.update({API_KEY_VAR: key, "LABEL_STUDIO_URL": "http://127.0.0.1:8080",
                           "MLFLOW_TRACKING_URI": f"http://mlinfra:{password}@127.0.0.1:5000"})
        resources = default_resources()
        from dagster._core.remote_representation.external_data import RepositorySnap
        from dagster_shared.serdes import serialize_value

        snap = serialize_value(RepositorySnap.from_def(build_definitions(small_demo_spec(), resources)
                                                      .get_repository_def()))
        leaks = [n for n, s in (("Label Studio key", key), ("MLflow password", password)) if s in snap]
        _row(rows, "LABEL_STUDIO_API_KEY and an MLflow URI with a password set (code location "
             "snapshot: the UI's resource config)", "neither secret in it",
             f"found: {leaks}" if leaks else f"neither found; tracking_uri shown: {resources['mlflow'].tracking_uri}",
             0, not leaks)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    from mlinfra_assets.resources import MLflowTracker
    from mlinfra_assets.ui import commands

    cmd = make_ui_command()
    local = MLflowTracker(tracking_uri="sqlite:///mlflow.db", artifact_root="mlartifacts")
    started = commands(local, int(cmd[cmd.index("-p") + 1]), int(cmd[cmd.index("--mlflow-port") + 1]), Path("workspace.yaml"))
    hosts = {name: c[c.index("-h" if name == "dagster" else "--host") + 1] for name, c in started.items()}
    _row(rows, "`make ui` bind addresses (Dagster UI, MLflow UI)", "127.0.0.1 both",
         f"{' '.join(cmd[-5:])}: " + ", ".join(f"{n} on {h}" for n, h in hosts.items()), 0,
         set(hosts) == {"dagster", "mlflow"} and set(hosts.values()) == {"127.0.0.1"})
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        try:
            with serve([sys.executable, "-m", "http.server", "--bind", "0.0.0.0", str(port), "--directory", tmp],
                       Path(tmp) / "log", http_ok(f"http://127.0.0.1:{port}/"), 30):
                seen = "accepted"
        except RuntimeError as exc:
            seen = f"refused: {exc}"
    _row(rows, "a test server listening on 0.0.0.0 (tests/servers.py serve)", "refused", seen, 0,
         seen.startswith("refused"))
    refused = []
    for name in BAD_ANNOTATION_NAMES:
        try:
            inbox_file(Path(tempfile.gettempdir()), name)
        except AnnotationFileError:
            refused.append(name)
    _row(rows, f"annotation file names {BAD_ANNOTATION_NAMES!r}",
         "each refused", f"{len(refused)} of {len(BAD_ANNOTATION_NAMES)} refused", 0,
         len(refused) == len(BAD_ANNOTATION_NAMES))
    ok = 0
    text = (PROJECT_ROOT / "mlinfra.yaml").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        for module in BAD_LF_MODULES:
            spec_file = Path(tmp) / "spec.yaml"
            spec_file.write_text(text.replace("labeling_functions: mlinfra_assets.demo.lfs",
                                              f"labeling_functions: {module!r}"))
            try:
                load_spec(spec_file)
            except SpecError as exc:
                ok += "labeling_functions" in str(exc) and "dotted module path" in str(exc)
    _row(rows, f"`labeling_functions` as a path or odd name {BAD_LF_MODULES!r}",
         "spec refused, naming labeling_functions", f"{ok} of {len(BAD_LF_MODULES)} refused", 0,
         ok == len(BAD_LF_MODULES))
    query = subprocess.run([str(Path(sys.executable).parent / "mlinfra"), "query", "DROP TABLE raw.transactions"],
                           capture_output=True, text=True, env={**os.environ, "MLINFRA_DATA_DIR": tempfile.gettempdir()})
    _row(rows, "`mlinfra query` with DDL (DROP TABLE)", "refused, exit 2",
         f"exit {query.returncode}: {query.stderr.strip()[:100]}", 0, query.returncode == 2)
    return rows


def table(rows: list) -> tuple[list[str], int]:
    lines = ["| # | fault | expected outcome | outcome seen | rows lost | as expected |",
             "|---|---|---|---|---|---|"]
    failures = 0
    for i, (fault, expected, seen, lost, ok) in enumerate(rows, 1):
        failures += (not ok) or (lost not in (0, "0"))
        lines.append(f"| {i} | {fault} | {expected} | {seen} | {lost} | {'yes' if ok else 'NO'} |")
    return lines, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    parser.add_argument("--skip-raw", action="store_true", help="only the concurrency and security tables")
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.ERROR)
    sections, failures = [], 0
    if not args.skip_raw:
        started = time.monotonic()
        lines, n, bad = raw_input_table()
        failures += bad
        sections.append(("Bad raw input", lines, f"{n} faults, {n - bad} as expected, rows lost in total: "
                         f"0 required; {time.monotonic() - started:.0f} s"))
    for title, build in (("Concurrency", concurrency_rows), ("Security", security_rows)):
        started = time.monotonic()
        lines, bad = table(build())
        failures += bad
        sections.append((title, lines, f"{len(lines) - 2} faults, {len(lines) - 2 - bad} as expected; "
                         f"{time.monotonic() - started:.0f} s"))
    text = "\n\n".join(f"## {t}\n\n" + "\n".join(lines) + f"\n\n{summary}" for t, lines, summary in sections)
    print(text)
    if args.out:
        args.out.write_text(f"# Fault campaign\n\n{text}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
