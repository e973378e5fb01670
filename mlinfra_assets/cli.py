"""`mlinfra` command: run the whole graph, show the platform's status, query the warehouse,
list and promote model versions."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _resources():
    from mlinfra_assets.resources import default_resources

    return default_resources()


def cmd_run(args: argparse.Namespace) -> int:
    """Materialize every asset over every partition in one run recorded in DAGSTER_HOME."""
    import dagster as dg

    from mlinfra_assets.runner import run_job
    from mlinfra_assets.spec import current_spec

    spec = current_spec()
    resources = _resources()
    os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.get()
    started = time.monotonic()
    result = run_job(spec, resources, args.job, instance=instance)
    elapsed = time.monotonic() - started
    stats = instance.get_run_step_stats(result.run_id)
    print("\n== steps (seconds)")
    for s in sorted(stats, key=lambda s: s.start_time or 0):
        took = (s.end_time or 0) - (s.start_time or 0)
        print(f"  {s.step_key:<40} {s.status.value if s.status else '?':<8} {took:7.1f}")
    print(f"\nrun {result.run_id} {'succeeded' if result.success else 'FAILED'} in {elapsed:.0f} s")
    print_status(spec, resources)
    return 0 if result.success else 1


def print_status(spec, resources) -> None:  # noqa: ANN001
    from mlinfra_assets.status import platform_status

    print(platform_status(spec, resources))


def cmd_status(args: argparse.Namespace) -> int:
    from mlinfra_assets.spec import current_spec

    print_status(current_spec(), _resources())
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """Run one read-only SQL statement against the warehouse and print the rows."""
    from mlinfra_assets.query import QueryRefused, run_query
    from mlinfra_assets.resources import WarehouseBusy

    try:
        df = run_query(_resources()["warehouse"], args.sql, wait_s=args.wait)
    except QueryRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
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
    parser = argparse.ArgumentParser(prog="mlinfra", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize every asset on every partition (make run)")
    run.add_argument("--job", default="full_pipeline")
    run.set_defaults(fn=cmd_run)
    status = sub.add_parser("status", help="tables, row counts, models and key figures")
    status.set_defaults(fn=cmd_status)
    query = sub.add_parser("query", help="read-only SQL against the warehouse")
    query.add_argument("sql")
    query.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a running step")
    query.add_argument("--max-rows", type=int, default=50)
    query.set_defaults(fn=cmd_query)
    model = sub.add_parser("model", help="registered model versions; promote one to champion (rollback)")
    model_sub = model.add_subparsers(dest="action", required=True)
    model_sub.add_parser("list", help="versions, aliases, holdout figures, gate decisions")
    promote = model_sub.add_parser("promote", help="move alias champion to VERSION")
    promote.add_argument("version")
    model.set_defaults(fn=cmd_model)
    label = sub.add_parser("label", help="label the annotation queue in the terminal (1..k, s, u, q)")
    label.add_argument("--annotator", help="your name in labeling.annotations (default: $MLINFRA_ANNOTATOR or login)")
    label.add_argument("--limit", type=int, help="stop after this many answers")
    label.set_defaults(fn=cmd_label)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
