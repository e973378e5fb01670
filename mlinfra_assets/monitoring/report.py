"""Store the drift report and summarize it for people: per-partition table, PSI heatmap."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.monitoring.decision import FEATURE_KINDS
from mlinfra_assets.monitoring.drift import REPORT_COLUMNS
from mlinfra_assets.resources import transaction

SQL = Path(__file__).parent / "sql"
TABLE = "monitoring.drift_report"
ADDED_COLUMNS = {
    "js_divergence": "DOUBLE", "missing_reference": "DOUBLE", "missing_current": "DOUBLE",
    "missing_change": "DOUBLE", "p_value": "DOUBLE", "p_adjusted": "DOUBLE",
    "realized_f1": "DOUBLE", "labeled_rows": "BIGINT",
}


def replace_window(
    con: duckdb.DuckDBPyConnection, start: date, end: date, report: pd.DataFrame
) -> int:
    """Delete the window's rows of `monitoring.drift_report` and insert `report`, in one transaction."""
    columns = ", ".join(REPORT_COLUMNS)
    with transaction(con, _report=report[REPORT_COLUMNS]):
        con.execute("CREATE SCHEMA IF NOT EXISTS monitoring")
        con.execute((SQL / "drift_report_ddl.sql").read_text())
        for column, sql_type in ADDED_COLUMNS.items():  # tables made by older versions
            con.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {column} {sql_type}")
        con.execute(f"DELETE FROM {TABLE} WHERE _partition >= ? AND _partition < ?", [start, end])
        con.execute(
            f"INSERT INTO {TABLE} ({columns}, reported_at) SELECT {columns}, now()::TIMESTAMP FROM _report"
        )
    return len(report)


def partitions_summary(report: pd.DataFrame) -> pd.DataFrame:
    """Per partition: features checked and drifted, their share, max PSI, prediction PSI, flag."""
    report = report.assign(day=pd.to_datetime(report["_partition"]).dt.strftime("%Y-%m-%d"))
    features = report[report["kind"].isin(FEATURE_KINDS)]
    out = features.groupby("day").agg(
        features=("feature", "size"),
        drifted=("drifted", "sum"),
        max_psi=("psi", "max"),
        flagged=("partition_drifted", "first"),
    )
    out["drifted_share"] = out["drifted"] / out["features"]
    prediction = report[report["kind"] == "prediction"].set_index("day")["psi"]
    out["prediction_psi"] = prediction.reindex(out.index)
    realized = report[report["kind"] == "performance"].set_index("day")["realized_f1"]
    out["realized_f1"] = realized.reindex(out.index)
    return out.reset_index()[
        ["day", "features", "drifted", "drifted_share", "max_psi", "prediction_psi",
         "realized_f1", "flagged"]
    ]


def empty_days(start: date, end: date, report: pd.DataFrame) -> list[str]:
    """The days of [start, end) that have no row in the report (no raw row that day)."""
    seen = set(pd.to_datetime(report["_partition"]).dt.strftime("%Y-%m-%d"))
    days = pd.date_range(start, end, inclusive="left").strftime("%Y-%m-%d")
    return [d for d in days if d not in seen]


def features_summary(report: pd.DataFrame) -> pd.DataFrame:
    """Per feature over the window: mean and max PSI, max KS, days drifted."""
    report = report[report["kind"] != "performance"]
    out = report.groupby(["feature", "kind"]).agg(
        mean_psi=("psi", "mean"),
        max_psi=("psi", "max"),
        max_ks=("ks_stat", "max"),
        days_drifted=("drifted", "sum"),
    )
    return out.reset_index().sort_values("max_psi", ascending=False)


def psi_heatmap(report: pd.DataFrame, psi_alert: float) -> Callable[[object], None]:
    """A draw callback for plots.png_markdown: PSI per feature (rows) and day (columns)."""
    grid = report.assign(day=pd.to_datetime(report["_partition"]).dt.strftime("%m-%d")).pivot_table(
        index="feature", columns="day", values="psi", aggfunc="max"
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
