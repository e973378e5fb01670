"""Store the drift report and summarize it for people: per-partition table, PSI heatmap."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.monitoring.decision import FEATURE_KINDS
from mlinfra_assets.monitoring.drift import REPORT_COLUMNS
from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.partitions import partition_type

SQL = Path(__file__).parent / "sql"
TABLE = "monitoring.drift_report"
ADDED_COLUMNS = {
    "js_divergence": "DOUBLE", "missing_reference": "DOUBLE", "missing_current": "DOUBLE",
    "missing_change": "DOUBLE", "p_value": "DOUBLE", "p_adjusted": "DOUBLE",
    "realized_metric": "DOUBLE", "labeled_rows": "BIGINT", "realized_low": "DOUBLE", "realized_high": "DOUBLE",
    "labeled_training_rows": "BIGINT", "realized_note": "VARCHAR",
}


def replace_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: object, end: object, report: pd.DataFrame
) -> int:
    """Delete the window's rows of `monitoring.drift_report` and insert `report`, in one transaction."""
    columns = ", ".join(REPORT_COLUMNS)
    with transaction(con, _report=report[REPORT_COLUMNS]):
        con.execute("CREATE SCHEMA IF NOT EXISTS monitoring")
        con.execute((SQL / "drift_report_ddl.sql").read_text().format(partition_type=partition_type(spec)))
        for column, sql_type in ADDED_COLUMNS.items():  # tables made by older versions
            con.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {column} {sql_type}")
        con.execute(f"DELETE FROM {TABLE} WHERE _partition >= ? AND _partition < ?", [start, end])
        con.execute(
            f"INSERT INTO {TABLE} ({columns}, reported_at) SELECT {columns}, now()::TIMESTAMP FROM _report"
        )
    return len(report)


def _keys(report: pd.DataFrame, key_of: Callable[[object], str]) -> pd.DataFrame:
    return report.assign(partition=[key_of(p) for p in report["_partition"]])


def partitions_summary(report: pd.DataFrame, key_of: Callable[[object], str] = str) -> pd.DataFrame:
    """Per partition: features checked and drifted, their share, max PSI, prediction PSI (the
    largest of the prediction rows), realized metric, flag."""
    columns = ["partition", "features", "drifted", "drifted_share", "max_psi", "prediction_psi",
               "realized_metric", "flagged"]
    if report.empty:
        return pd.DataFrame(columns=columns)
    report = _keys(report, key_of)
    features = report[report["kind"].isin(FEATURE_KINDS)]
    out = features.groupby("partition", sort=False).agg(
        features=("feature", "size"),
        drifted=("drifted", "sum"),
        max_psi=("psi", "max"),
        flagged=("partition_drifted", "first"),
    )
    out["drifted_share"] = out["drifted"] / out["features"]
    prediction = report[report["kind"] == "prediction"].groupby("partition")["psi"].max()
    out["prediction_psi"] = prediction.reindex(out.index)
    realized = report[report["kind"] == "performance"].set_index("partition")["realized_metric"]
    out["realized_metric"] = realized.reindex(out.index)
    return out.reset_index()[columns]


def empty_partitions(keys: list[str], report: pd.DataFrame, key_of: Callable[[object], str] = str) -> list[str]:
    """The partitions of `keys` that have no row in the report (no raw row there)."""
    seen = {key_of(p) for p in report["_partition"]}
    return [k for k in keys if k not in seen]


def features_summary(report: pd.DataFrame) -> pd.DataFrame:
    """Per feature over the window: mean and max PSI, max KS, partitions drifted."""
    report = report[report["kind"] != "performance"]
    out = report.groupby(["feature", "kind"]).agg(
        mean_psi=("psi", "mean"),
        max_psi=("psi", "max"),
        max_ks=("ks_stat", "max"),
        partitions_drifted=("drifted", "sum"),
    )
    return out.reset_index().sort_values("max_psi", ascending=False)


def psi_heatmap(
    report: pd.DataFrame, psi_alert: float, key_of: Callable[[object], str] = str
) -> Callable[[object], None]:
    """A draw callback for plots.png_markdown: PSI per feature (rows) and partition (columns)."""
    grid = _keys(report, key_of).pivot_table(
        index="feature", columns="partition", values="psi", aggfunc="max", sort=False
    )

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        image = ax.imshow(
            grid.to_numpy(),
            aspect="auto",
            cmap="magma_r",
            vmin=0,
            vmax=max(2 * psi_alert, float(np.nanmax(grid.to_numpy()))),
        )
        ax.set_yticks(range(len(grid.index)), grid.index, fontsize=7)
        step = max(1, len(grid.columns) // 12)
        ax.set_xticks(
            range(0, len(grid.columns), step), grid.columns[::step], fontsize=7, rotation=45
        )
        ax.figure.colorbar(image, ax=ax, label=f"PSI (alert > {psi_alert})")

    return draw
