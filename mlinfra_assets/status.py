"""The platform at a glance: warehouse tables, MLflow models, label and model figures."""

from typing import Any

from mlinfra_assets.holdout import gold_from
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.spec import DatasetSpec


def _tables(con) -> list[tuple[str, int]]:  # noqa: ANN001 - a DuckDB connection
    names = con.execute(
        "SELECT table_schema || '.' || table_name, table_type FROM information_schema.tables "
        "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1"
    ).fetchall()
    return [(n, con.execute(f"SELECT count(*) FROM {n}").fetchall()[0][0], t) for n, t in names]


def _exists(tables: list, name: str) -> bool:
    return any(t[0] == name for t in tables)


def warehouse_section(spec: DatasetSpec, warehouse: Warehouse, tables: bool = True) -> list[str]:
    """The warehouse's tables with their row counts (`tables=False`: how many, on the header
    line), then the weak labels, the latest evaluation, the edge variants, drift and performance."""
    out = [f"== warehouse  {warehouse.path}"]
    with warehouse.connect(read_only=True) as con:
        listing = _tables(con)
        if not tables:
            out[0] += f"  ({len(listing)} tables and views: mlinfra status lists them)"
        for name, rows, kind in listing if tables else []:
            out.append(f"  {name:<36} {rows:>10,} rows{'  (view)' if kind == 'VIEW' else ''}")
        weak = _exists(listing, "labeling.weak_labels") and _exists(listing, spec.raw_table)
        if weak:
            covered, total = con.execute(
                f"SELECT (SELECT count(*) FROM labeling.weak_labels), (SELECT count(*) FROM {spec.raw_table})"
            ).fetchall()[0]
            out.append(f"== weak labels: coverage {covered / max(total, 1):.1%} of {total:,} raw rows")
        details = []  # on one line
        if weak and spec.gold is not None and _exists(listing, "raw.gold"):
            acc, n = con.execute(
                f"SELECT avg((w.label = g.label)::INT), count(*) FROM labeling.weak_labels w "
                f"JOIN ({gold_from(spec)}) g ON CAST(w.row_id AS VARCHAR) = CAST(g.row_id AS VARCHAR)"
            ).fetchall()[0]
            details.append(f"label-model accuracy vs gold {acc:.3f} on {n:,} rows")
        if _exists(listing, "labeling.annotations"):
            n = con.execute("SELECT count(*) FROM labeling.annotations").fetchall()[0][0]
            details.append(f"human annotations {n:,}")
        if details:
            out.append("  " + "; ".join(details))
        if _exists(listing, "training.evaluation"):
            rows = con.execute(
                "SELECT model_version, metric, value, decision FROM training.evaluation "
                "WHERE slice = 'overall' AND evaluated_at = (SELECT max(evaluated_at) FROM training.evaluation) "
                "ORDER BY metric"
            ).fetchall()
            out.append("== latest model evaluation (holdout)")
            out += evaluation_lines(rows)
        if _exists(listing, "edge.compression_report"):
            variants = con.execute(
                "SELECT variant, size_bytes, latency_b1_p50_ms, metric_value, deployable "
                "FROM edge.compression_report ORDER BY variant"
            ).fetchall()
            out += edge_lines(spec, variants) if tables else edge_summary(spec, variants)
        if _exists(listing, "monitoring.drift_report"):
            flagged = con.execute(
                "SELECT count(DISTINCT _partition) FILTER (WHERE drifted), count(DISTINCT _partition) "
                "FROM monitoring.drift_report"
            ).fetchall()[0]
            out.append(f"== drift: partitions with a drifted feature {flagged[0]} of {flagged[1]}")
        if _exists(listing, "monitoring.performance"):
            out += performance_lines(con)
    return out


def performance_lines(con) -> list[str]:  # noqa: ANN001 - a DuckDB connection
    """The champion's estimated metric: the last partition's with its interval, the lowest,
    and how the realized figures compare where labels arrived."""
    last = con.execute(
        "SELECT _partition, metric, estimated, estimated_low, estimated_high FROM monitoring.performance "
        "WHERE estimated IS NOT NULL ORDER BY _partition DESC LIMIT 1").fetchall()
    if not last:
        return ["== performance: no estimate yet (predictions scored before calibration: re-materialize them)"]
    partition, metric, value, low, high = last[0]
    lowest, at, realized, error = con.execute(
        "SELECT min(estimated), arg_min(_partition, estimated), count(realized_metric), "
        "avg(abs(estimated - realized_metric)) FROM monitoring.performance").fetchall()[0]
    out = [f"== performance (estimated without labels): {metric} {value:.3f} [{low:.3f}, {high:.3f}] "
           f"on {partition}, lowest {lowest:.3f} on {at}"]
    if realized:
        out.append(f"  realized on {realized} partitions, mean |estimated - realized| {error:.3f}")
    else:
        out[-1] += "; no realized figure yet (annotations of non-training rows)"
    return out


def _figure(spec: DatasetSpec, value: float | None) -> str:
    return "not judged (no labelled holdout)" if value is None else f"{spec.metric} {value:.4f}"


def edge_lines(spec: DatasetSpec, variants: list[tuple]) -> list[str]:
    """(variant, size_bytes, latency_b1_p50_ms, metric_value, deployable) rows: one line each."""
    return ["== edge variants"] + [
        f"  {name:<22} {size / 1024:8.1f} KiB  p50@1 {ms:.3f} ms  {_figure(spec, value)}  deployable={ok}"
        for name, size, ms, value, ok in variants
    ]


def edge_summary(spec: DatasetSpec, variants: list[tuple]) -> list[str]:
    """The edge variants in two lines (`mlinfra status` lists each): how many are deployable, the
    smallest and the fastest of those against fp32, and the ones that are not with their metric."""
    ok = [v for v in variants if v[4]]
    out = [f"== edge variants: {len(ok)} of {len(variants)} deployable (mlinfra status lists them)"]
    fp32 = next((v for v in variants if v[0] == "fp32"), None)
    if ok:
        small, fast = min(ok, key=lambda v: v[1]), min(ok, key=lambda v: v[2])
        base = f" (fp32 {fp32[1] / 1024:.1f} KiB, {fp32[2]:.3f} ms)" if fp32 else ""
        out[0] += (f"; smallest {small[0]} {small[1] / 1024:.1f} KiB, fastest {fast[0]} p50@1 {fast[2]:.3f} ms"
                   + base)
    kept_out = [f"{name} ({_figure(spec, value)})" for name, _, _, value, deployable in variants if not deployable]
    if kept_out:
        out.append("  not deployable: " + ", ".join(kept_out))
    return out


def evaluation_lines(rows: list[tuple]) -> list[str]:
    """(model_version, metric, value, decision) rows of one evaluation as one line per version
    (its figures, the row counts, the gate's decision) and one for the baselines beside it."""
    out = []
    for version in dict.fromkeys(r[0] for r in rows):
        figures = {m: val for v, m, val, _ in rows if v == version}
        decision = next(d for v, _, _, d in rows if v == version)

        def shown(value: float | None, counts: bool = False) -> str:
            return "n/a" if value is None else f"{value:,.0f}" if counts else f"{value:.4f}"

        counts = {m: figures.pop(m) for m in ("rows", "positives") if m in figures}
        side = {prefix: {m.removeprefix(prefix): figures.pop(m) for m in list(figures) if m.startswith(prefix)}
                for prefix in ("champion_", "baseline_")}
        line = f"  v{version} ({decision}): " + ", ".join(f"{m} {shown(val)}" for m, val in figures.items())
        out.append(line + "".join(f", {m} {shown(n, counts=True)}" for m, n in counts.items()))
        for prefix, label in (("champion_", "the champion before it"), ("baseline_", "baselines")):
            shown_side = {m: val for m, val in side[prefix].items() if m not in ("rows", "positives")}
            if shown_side:
                out.append(f"    {label}: " + ", ".join(f"{m} {shown(val)}" for m, val in shown_side.items()))
    return out


def read_registry(spec: DatasetSpec, mlflow_resource: Any) -> tuple[int, dict[str, str], str | None]:
    """(versions of the spec's registered model, its aliases, None), or (0, {}, why) when the
    registry cannot be read: an unreachable server or a broken store is said as such, never as
    "no model yet". Any other error (a bug) is raised."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient
    from sqlalchemy.exc import SQLAlchemyError

    try:
        mlflow_resource.activate()
        client = MlflowClient()
        versions = client.search_model_versions(f"name = '{spec.name}'")
        aliases = dict(client.get_registered_model(spec.name).aliases) if versions else {}
    except (MlflowException, SQLAlchemyError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return 0, {}, (f"registry not readable at {mlflow_resource.tracking_uri}: {type(exc).__name__}: {first} "
                       "(check MLFLOW_TRACKING_URI, that the server runs, or the store file)")
    return len(versions), {k: str(v) for k, v in aliases.items()}, None


def mlflow_section(spec: DatasetSpec, mlflow_resource: Any) -> list[str]:
    out = [f"== MLflow  {mlflow_resource.tracking_uri}  (artifacts {mlflow_resource.artifact_root})"]
    versions, aliases, error = read_registry(spec, mlflow_resource)
    if error:
        return out + [f"  {error}"]
    if not versions:
        return out + [f"  no registered model {spec.name!r} yet: run `mlinfra run`"]
    out.append(f"  registered model {spec.name!r}: {versions} version(s), aliases {aliases}")
    return out


def platform_status(spec: DatasetSpec, resources: dict[str, Any], tables: bool = True) -> str:
    """The summary `mlinfra status` prints (`mlinfra run` ends with it, `tables=False`)."""
    lines: list[str] = []
    try:
        lines += warehouse_section(spec, resources["warehouse"], tables)
    except FileNotFoundError as exc:
        lines.append(str(exc))
    lines += mlflow_section(spec, resources["mlflow"])
    lines += [
        "== next: make ui (the Dagster UI on http://127.0.0.1:3000, MLflow's on :5000), "
        ".venv/bin/mlinfra serve (the champion on http://127.0.0.1:8080)",
        "  .venv/bin/mlinfra query \"SELECT * FROM analytics.drift_history LIMIT 5\"",
    ]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """A metadata value as JSON: numbers, text and JSON as they are; tables and plots left out."""
    raw = getattr(value, "value", value)
    if isinstance(raw, float) and raw != raw:
        return None
    if isinstance(raw, (int, float, str, bool, list, dict)) or raw is None:
        if isinstance(raw, str) and ("![" in raw or raw.count("|") > 6):
            return None  # an embedded plot or a markdown table: shown in the UI
        return raw
    return None


def _materialization(instance: Any, key: Any) -> dict[str, Any] | None:
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    meta = {k: _plain(v) for k, v in (event.asset_materialization.metadata or {}).items()}
    return {
        "materialized_at": event.timestamp,
        "run_id": event.run_id,
        "partition": event.asset_materialization.partition,
        "metadata": {k: v for k, v in meta.items() if v is not None},
    }


def stage_states(instance: Any, spec: DatasetSpec) -> dict[str, dict[str, Any]]:
    """Per asset group: each asset's latest materialization (figures included) and each
    check's latest outcome, from the Dagster instance the runs were recorded in."""
    from mlinfra_assets import definitions

    # the code location this process loaded on import, where it is of the same spec: building it
    # again would check the spec and its LF module again (about 3 s of `mlinfra status`)
    defs = definitions.defs if spec == definitions.SPEC else definitions.build_definitions(spec)
    graph = defs.resolve_asset_graph()
    check_keys = list(graph.asset_check_keys)
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys) if check_keys else {}
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if not node.is_materializable:
            continue  # the user's own source table or file: read by the platform, not made by it
        group = out.setdefault(node.group_name or "default", {"assets": {}, "checks": {}})
        group["assets"][key.to_user_string()] = _materialization(instance, key)
    for check_key, record in checks.items():
        node = graph.get(check_key.asset_key)
        group = out.setdefault(node.group_name or "default", {"assets": {}, "checks": {}})
        evaluation = record.event.asset_check_evaluation if record.event else None
        group["checks"][f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {
            "status": record.status.value,
            "description": getattr(evaluation, "description", None),
        }
    for group in out.values():
        done = sum(v is not None for v in group["assets"].values())
        failed = [k for k, v in group["checks"].items() if v["status"] == "FAILED"]
        group["state"] = ("not materialized" if done == 0 else "partly materialized" if done < len(group["assets"])
                          else "checks failed" if failed else "materialized")
    return out


def status_dict(spec: DatasetSpec, resources: dict[str, Any]) -> dict[str, Any]:
    """The platform's state as a dict (`mlinfra status --json`): the spec in brief, the
    champion with its holdout figures and baselines, the label model's choice and each
    stage's state."""
    import dagster as dg

    from mlinfra_assets import keys
    from mlinfra_assets.training import registry

    instance = dg.DagsterInstance.get()
    stages = stage_states(instance, spec)

    def meta(key: dg.AssetKey) -> dict[str, Any]:
        for group in stages.values():
            found = group["assets"].get(key.to_user_string())
            if found:
                return found["metadata"]
        return {}

    versions, aliases, champion_error = read_registry(spec, resources["mlflow"])
    champion = aliases.get(registry.CHAMPION)
    if champion_error is None and champion is None:
        champion_error = (f"no champion yet: the gate (training/evaluation) promoted none of {versions} version(s)"
                          if versions else f"no registered model {spec.name!r} yet: run `mlinfra run`")
    evaluation = meta(keys.EVALUATION)
    return {
        "spec": {
            "name": spec.name,
            "path": str(spec.spec_path) if spec.spec_path else None,
            "classes": spec.classes,
            "metric": spec.metric,
            "positive_class": spec.classes[spec.positive_index] if spec.n_classes == 2 else None,
            "timestamp_column": spec.timestamp_column,
            "gold": None if spec.gold is None else (spec.gold.table or spec.gold.path or f"source column {spec.gold.column}"),
        },
        "data_dir": resources["data_dir"].root,
        "champion": {"version": champion, "note": champion_error, "evaluation": evaluation},
        "label_model": {k: v for k, v in meta(keys.WEAK_LABELS).items() if "label_model" in k or "majority" in k},
        "synthetic": meta(keys.SYNTHETIC_ROWS),
        "stages": stages,
    }
