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


def warehouse_section(spec: DatasetSpec, warehouse: Warehouse) -> list[str]:
    out = [f"== warehouse  {warehouse.path}"]
    with warehouse.connect(read_only=True) as con:
        tables = _tables(con)
        for name, rows, kind in tables:
            out.append(f"  {name:<36} {rows:>10,} rows{'  (view)' if kind == 'VIEW' else ''}")
        if _exists(tables, "labeling.weak_labels") and _exists(tables, spec.raw_table):
            covered, total = con.execute(
                f"SELECT (SELECT count(*) FROM labeling.weak_labels), (SELECT count(*) FROM {spec.raw_table})"
            ).fetchall()[0]
            out.append("== weak labels")
            out.append(f"  coverage {covered / max(total, 1):.1%} of {total:,} raw rows")
            if spec.gold is not None and _exists(tables, spec.gold.table):
                acc, n = con.execute(
                    f"SELECT avg((w.label = g.label)::INT), count(*) FROM labeling.weak_labels w "
                    f"JOIN ({gold_from(spec)}) g ON CAST(w.row_id AS VARCHAR) = CAST(g.row_id AS VARCHAR)"
                ).fetchall()[0]
                out.append(f"  label-model accuracy vs gold {acc:.3f} on {n:,} rows")
        if _exists(tables, "labeling.annotations"):
            n = con.execute("SELECT count(*) FROM labeling.annotations").fetchall()[0][0]
            out.append(f"  human annotations {n:,}")
        if _exists(tables, "training.evaluation"):
            rows = con.execute(
                "SELECT model_version, metric, value, decision FROM training.evaluation "
                "WHERE slice = 'overall' AND evaluated_at = (SELECT max(evaluated_at) FROM training.evaluation) "
                "ORDER BY metric"
            ).fetchall()
            out.append("== latest model evaluation (holdout)")
            out += [f"  v{v} {m:<14} {val:.4f}  ({d})" for v, m, val, d in rows]
        if _exists(tables, "edge.compression_report"):
            out.append("== edge variants")
            for row in con.execute(
                "SELECT variant, size_bytes, latency_b1_p50_ms, f1, deployable FROM edge.compression_report ORDER BY variant"
            ).fetchall():
                out.append(f"  {row[0]:<22} {row[1] / 1024:8.1f} KiB  p50@1 {row[2]:.3f} ms  F1 {row[3]:.4f}  deployable={row[4]}")
        if _exists(tables, "monitoring.drift_report"):
            flagged = con.execute(
                "SELECT count(DISTINCT _partition) FILTER (WHERE drifted), count(DISTINCT _partition) "
                "FROM monitoring.drift_report"
            ).fetchall()[0]
            out.append(f"== drift: partitions with a drifted feature {flagged[0]} of {flagged[1]}")
    return out


def mlflow_section(spec: DatasetSpec, mlflow_resource: Any) -> list[str]:
    out = [f"== MLflow  {mlflow_resource.tracking_uri}  (artifacts {mlflow_resource.artifact_root})"]
    try:
        from mlflow.tracking import MlflowClient

        mlflow_resource.activate()
        client = MlflowClient()
        versions = client.search_model_versions(f"name = '{spec.name}'")
        model = client.get_registered_model(spec.name) if versions else None
    except Exception as exc:  # the store may not exist yet
        return out + [f"  no registered model yet ({type(exc).__name__})"]
    aliases = model.aliases if model else {}
    out.append(f"  registered model {spec.name!r}: {len(versions)} version(s), aliases {aliases}")
    return out


def platform_status(spec: DatasetSpec, resources: dict[str, Any]) -> str:
    lines: list[str] = []
    try:
        lines += warehouse_section(spec, resources["warehouse"])
    except FileNotFoundError as exc:
        lines.append(str(exc))
    lines += mlflow_section(spec, resources["mlflow"])
    lines += [
        "== next",
        "  make ui                      Dagster UI on http://127.0.0.1:3000 (lineage, checks, plots)",
        "  .venv/bin/mlinfra query \"SELECT * FROM analytics.drift_history LIMIT 5\"",
        "  .venv/bin/mlflow ui --backend-store-uri " + resources["mlflow"].tracking_uri,
    ]
    return "\n".join(lines)
