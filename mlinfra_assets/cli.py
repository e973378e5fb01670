"""`mlinfra` command: draft a spec for a table, run the whole graph, show the platform's
status, query the warehouse, label the queue, list and promote model versions, serve the model,
open the UIs.

Every command takes `--spec FILE` (default: $MLINFRA_SPEC, else the demo's mlinfra.yaml) and
`--data-dir DIR` (default: $MLINFRA_DATA_DIR, else `data/` beside the spec). A mistake in the
user's spec, table or labels prints one line naming it and exits 2, without a traceback."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from pathlib import Path

# Dagster's notes to its own API users (a parameter in beta or preview, printed each time the code
# location loads) tell a user of these commands nothing they can act on
warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _resources():
    from mlinfra_assets.resources import default_resources

    return default_resources()


def _use(args: argparse.Namespace) -> None:
    """Point this process (and the code location it builds) at the chosen spec and data folder."""
    if getattr(args, "spec", None):
        os.environ["MLINFRA_SPEC"] = str(Path(args.spec).expanduser().resolve())
    if getattr(args, "data_dir", None):
        os.environ["MLINFRA_DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())


def dagster_home() -> Path:
    """$DAGSTER_HOME, else `.dagster` in the data folder; the project's instance settings
    (dagster.yaml: telemetry off, pools) are copied there when it is new."""
    from mlinfra_assets.resources import default_data_dir
    from mlinfra_assets.spec import PROJECT_ROOT

    data = Path(os.environ.get("MLINFRA_DATA_DIR") or default_data_dir())
    home = Path(os.environ.get("DAGSTER_HOME") or data / ".dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = PROJECT_ROOT / "dagster.yaml"
    if not (home / "dagster.yaml").exists() and settings.exists():
        (home / "dagster.yaml").write_text(settings.read_text())
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_init(args: argparse.Namespace) -> int:
    """Draft DIR/spec.yaml and DIR/lfs.py from a table; print what was decided and the next command."""
    from mlinfra_assets.init_spec import draft, write

    data_dir = Path(os.environ.get("MLINFRA_DATA_DIR") or "data")
    result = draft(args.path, args.target, args.id, args.timestamp, data_dir=data_dir)
    out = Path(args.out or result.spec["name"])
    spec_path, lf_path = write(result, out, force=args.force)
    for note in result.notes:
        print(f"  {note}")
    print(f"wrote {spec_path} and {lf_path}")
    print(f"next: edit {lf_path} (your labeling rules), then run\n  mlinfra run --spec {spec_path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Materialize every asset over every partition in one run recorded in DAGSTER_HOME. The
    steps show as they run (live on a terminal, a line per finished step elsewhere); Dagster's
    event stream and the libraries' output go to data/logs/run-*.log (--verbose: the terminal).
    With --replay-from DAY (the demo's default: two days before its shift) the run covers the
    days before DAY, and the days from DAY are replayed as the daemon runs them (replay.py):
    a line per day, and the loop in a few lines at the end."""
    import uuid

    import dagster as dg

    from mlinfra_assets.progress import RunProgress, failure_lines, output_to, run_log_path
    from mlinfra_assets.replay import day_keys, default_replay_from, replay_after_history
    from mlinfra_assets.runner import run_job
    from mlinfra_assets.spec import current_spec
    from mlinfra_assets.validate import check_spec

    spec = current_spec()
    replay_from = None if args.no_replay else (args.replay_from or default_replay_from(spec))
    days = day_keys(spec, replay_from) if replay_from else []
    resources = _resources()
    check_spec(spec, resources["warehouse"].path)
    history_last = _day_before(days[0]) if days else None
    home = dagster_home()
    instance = dg.DagsterInstance.get()
    run_id, started = str(uuid.uuid4()), time.monotonic()

    def summary(result) -> None:  # noqa: ANN001 - an ExecuteInProcessResult
        print(f"run {result.run_id} {'succeeded' if result.success else 'FAILED'} in "
              f"{time.monotonic() - started:.0f} s (Dagster runs in {home}; data in {resources['data_dir'].root})")
        print_status(spec, resources, tables=args.verbose)
        print_decisions(result)
        if replayed:
            from mlinfra_assets.replay import loop_lines

            print("\n".join(loop_lines(spec, resources, replayed, before)))

    if args.verbose:
        result = run_job(spec, resources, args.job, instance=instance, run_id=run_id, last=history_last)
        before, replayed = replay_after_history(spec, resources, instance, days if result.success else [], print)
        summary(result)
        log = None
    else:
        log = run_log_path(resources["data_dir"].root, run_id)
        print(f"run {run_id[:8]} ({args.job}{f', days up to {history_last}' if days else ''}); "
              f"Dagster's events and the libraries' output: {log}", flush=True)
        with output_to(log) as terminal:  # what the summary's libraries say goes to the log too
            progress = RunProgress(terminal)
            with progress.showing():
                result = run_job(spec, resources, args.job, instance=instance, run_id=run_id, watch=progress,
                                 last=history_last)
            before, replayed = replay_after_history(spec, resources, instance, days if result.success else [],
                                                    lambda line: print(line, file=terminal, flush=True))
            with contextlib.redirect_stdout(terminal):
                if progress.not_run():
                    print(f"{len(progress.not_run())} of {progress.total} steps not run (downstream of the failure)")
                summary(result)
    failed = [r for d in replayed for r in [d.daily, *(run for _, run in [*d.retrains, *d.edge])] if not r.success]
    if not result.success:
        print("\n".join(failure_lines(result, log)), file=sys.stderr)
    for run in failed:
        print("\n".join(failure_lines(run, log)), file=sys.stderr)
    return 0 if result.success and not failed else 1


def _day_before(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


# what the run decided, in a sentence each: (asset, metadata key, label)
DECISIONS = (
    ("labeling/weak_labels", "label_model_reason", "weak labels"),
    ("synthetic/synthetic_rows", "withheld_reason", "synthetic rows"),
    ("training/model", "weak_rows_reason", "training set"),
    ("training/evaluation", "reason", "gate"),
    ("monitoring/shadow", "reason", "shadow"),
    ("training/evaluation", "champion_vs_baseline", "champion"),
)


def print_decisions(result) -> None:  # noqa: ANN001 - an ExecuteInProcessResult
    """The run's decisions from its own materializations: which labeler wrote the weak labels,
    whether synthetic rows were withheld, the gate, a shadow period's end, and the champion
    against the majority class."""
    from mlinfra_assets import keys
    from mlinfra_assets.monitoring.shadow import PROMOTED

    found, promoted = {}, None
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        for asset, key, label in DECISIONS:
            if event.asset_key.to_user_string() == asset and key in meta:
                found[(asset, key)] = (label, meta[key].value)
        if event.asset_key == keys.SHADOW and "decision" in meta:
            promoted = meta["shadow_version"].value if meta["decision"].value == PROMOTED else None
    champion = ("training/evaluation", "champion_vs_baseline")
    if promoted is not None and champion in found:  # the gate wrote it before the shadow period ended
        label, text = found[champion]
        found[champion] = (label, f"{text}; then shadow version {promoted} became champion (shadow: above)")
    if found:
        print("== decisions of this run")
        for asset, key, _ in DECISIONS:
            if (asset, key) in found:
                label, text = found[(asset, key)]
                print(f"  {label + ':':<16} {text}")


def print_status(spec, resources, tables: bool = True) -> None:  # noqa: ANN001
    from mlinfra_assets.status import platform_status

    print(platform_status(spec, resources, tables))


def cmd_status(args: argparse.Namespace) -> int:
    from mlinfra_assets.spec import current_spec

    if args.json:
        import json

        from mlinfra_assets.status import status_dict

        dagster_home()
        print(json.dumps(status_dict(current_spec(), _resources()), indent=2, default=str))
        return 0
    print_status(current_spec(), _resources())
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """Run one read statement against the spec's warehouse (found from --spec / --data-dir, not
    the current folder) and print the rows. A refused statement or an SQL error: one line, exit 2;
    a run holding the file past --wait: one line, exit 3."""
    from mlinfra_assets.query import QueryFailed, QueryRefused, run_query
    from mlinfra_assets.warehouse_file import WarehouseBusy, data_root, warehouse_path

    try:  # the path without the resources: they import Dagster (~1 s) that a query does not need
        df = run_query(warehouse_path(data_root(None, os.environ), os.environ), args.sql, wait_s=args.wait)
    except QueryRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except QueryFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WarehouseBusy as exc:
        print(f"busy: {exc}", file=sys.stderr)
        return 3
    import pandas as pd

    with pd.option_context("display.max_rows", args.max_rows, "display.width", 200):
        print(df.to_string(index=False, max_rows=args.max_rows))
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """`model list`: the registered versions; `model promote VERSION`: move `champion` (rollback)."""
    from mlinfra_assets.spec import current_spec
    from mlinfra_assets.training import registry

    name, tracker = current_spec().name, _resources()["mlflow"]
    try:
        if args.action == "list":
            import pandas as pd

            print(pd.DataFrame(registry.list_versions(tracker, name)).to_string(index=False))
        else:
            previous = registry.promote(tracker, name, args.version)
            print(f"{name}: champion is now version {args.version} (was {previous or 'none'})")
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the spec's registered model at `--alias` over HTTP until interrupted."""
    from mlinfra_assets.serving.server import ServeError, serve
    from mlinfra_assets.spec import current_spec

    resources = _resources()
    try:
        serve(resources["mlflow"], resources["warehouse"].path, current_spec().name, args.alias, args.host,
              args.port, args.poll_s, args.max_body_mb, args.log_payloads)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """The Dagster UI and the MLflow UI on 127.0.0.1 (make ui); Ctrl-C stops both."""
    from mlinfra_assets.spec import PROJECT_ROOT
    from mlinfra_assets.ui import run_ui

    dagster_home()
    return run_ui(_resources()["mlflow"], args.port, args.mlflow_port, PROJECT_ROOT / "workspace.yaml")


def cmd_label(args: argparse.Namespace) -> int:
    """Label the annotation queue in the terminal; each answer is stored at once."""
    import getpass

    from mlinfra_assets.labeling.terminal import key_reader, label_loop
    from mlinfra_assets.spec import current_spec

    annotator = args.annotator or os.environ.get("MLINFRA_ANNOTATOR") or getpass.getuser()
    try:
        label_loop(current_spec(), _resources()["warehouse"], annotator, key_reader(sys.stdin), sys.stdout, args.limit)
    except KeyboardInterrupt:
        print("\ninterrupted: every answer given so far is stored")
        return 130
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--spec", help="dataset spec file (default: $MLINFRA_SPEC, else the demo's mlinfra.yaml)")
    common.add_argument("--data-dir", help="outputs: warehouse, MLflow store, models, inbox (default: data/ beside the spec)")
    parser = argparse.ArgumentParser(prog="mlinfra", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", parents=[common], help="draft spec.yaml and lfs.py from your table")
    init.add_argument("path", help="a CSV or Parquet file, or duckdb:schema.table (in the data folder's warehouse)")
    init.add_argument("--target", required=True, help="the label column")
    init.add_argument("--id", help="a unique id column (default: generated from each row's content)")
    init.add_argument("--timestamp", help="a timestamp column (default: none; each run is a batch)")
    init.add_argument("--out", help="folder for spec.yaml and lfs.py (default: the table's name)")
    init.add_argument("--force", action="store_true", help="overwrite spec.yaml and lfs.py")
    init.set_defaults(fn=cmd_init)
    run = sub.add_parser("run", parents=[common], help="materialize every asset on every partition (make run)")
    run.add_argument("--job", default="full_pipeline")
    run.add_argument("--verbose", action="store_true",
                     help="Dagster's full event stream on the terminal instead of the step lines and the log file")
    run.add_argument("--replay-from", metavar="DAY",
                     help="run the days before DAY at once, then replay the days from DAY as the daemon runs them "
                          "(daily run, drift sensor, retraining); the demo's default: two days before its shift")
    run.add_argument("--no-replay", action="store_true", help="every day in one run, even for the demo with a shift")
    run.set_defaults(fn=cmd_run)
    status = sub.add_parser("status", parents=[common], help="tables, row counts, models and key figures")
    status.add_argument("--json", action="store_true", help="the champion's figures, baselines and each stage's state as JSON")
    status.set_defaults(fn=cmd_status)
    query = sub.add_parser("query", parents=[common], help="read-only SQL against the warehouse")
    query.add_argument("sql")
    query.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a running step")
    query.add_argument("--max-rows", type=int, default=50)
    query.set_defaults(fn=cmd_query)
    model = sub.add_parser("model", parents=[common], help="registered model versions; promote one to champion (rollback)")
    model_sub = model.add_subparsers(dest="action", required=True)
    # --spec / --data-dir also after the action (`model promote 2 --spec S`); SUPPRESS keeps a
    # value given before it (`model --spec S promote 2`)
    after = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    after.add_argument("--spec")
    after.add_argument("--data-dir")
    model_sub.add_parser("list", parents=[after], help="versions, aliases, holdout figures, gate decisions")
    promote = model_sub.add_parser("promote", parents=[after], help="move alias champion to VERSION")
    promote.add_argument("version")
    model.set_defaults(fn=cmd_model)
    serve = sub.add_parser("serve", parents=[common], help="the registered model over HTTP (MLflow's scoring protocol)")
    serve.add_argument("--alias", default="champion", help="the registry alias to serve (default: champion)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--poll-s", type=float, default=10.0, help="seconds between checks of the alias (default: 10)")
    serve.add_argument("--max-body-mb", type=float, default=20.0, help="largest request body accepted (default: 20)")
    serve.add_argument("--log-payloads", action="store_true",
                       help="also store each request's body in monitoring.served_requests (default: never)")
    serve.set_defaults(fn=cmd_serve)
    ui = sub.add_parser("ui", parents=[common], help="the Dagster UI and the MLflow UI on 127.0.0.1 (make ui)")
    ui.add_argument("-p", "--port", type=int, default=3000, help="the Dagster UI's port (default: 3000)")
    ui.add_argument("--mlflow-port", type=int, default=5000, help="the MLflow UI's port (default: 5000)")
    ui.set_defaults(fn=cmd_ui)
    label = sub.add_parser("label", parents=[common], help="label the annotation queue in the terminal (1..k, s, u, q)")
    label.add_argument("--annotator", help="your name in labeling.annotations (default: $MLINFRA_ANNOTATOR or login)")
    label.add_argument("--limit", type=int, help="stop after this many answers")
    label.set_defaults(fn=cmd_label)
    args = parser.parse_args(argv)
    _use(args)
    try:
        return args.fn(args)
    except Exception as exc:
        if not _users_mistake(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _users_mistake(exc: BaseException) -> bool:
    """Errors about the user's spec, table, labels or LFs (not bugs): one line, no traceback."""
    from mlinfra_assets.executor import ExecutorError
    from mlinfra_assets.init_spec import InitError
    from mlinfra_assets.labeling.lfs import LabelingFunctionError
    from mlinfra_assets.spec import SpecError  # GoldError is one
    from mlinfra_assets.warehouse.read import SourceUnreadable

    return isinstance(exc, (SpecError, InitError, LabelingFunctionError, SourceUnreadable, FileNotFoundError,
                            ExecutorError))


if __name__ == "__main__":
    sys.exit(main())
