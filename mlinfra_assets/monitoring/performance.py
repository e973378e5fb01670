"""Realized model quality per partition, once annotations for the partition's rows arrive."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec

SQL = Path(__file__).parent / "sql"
NEEDS = ("monitoring.predictions", "labeling.gold_labels")


def _exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


def realized_f1(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: object, end: object
) -> pd.DataFrame:
    """One report row (kind `performance`) per partition of [start, end) with annotated rows.

    `realized_f1` is the F1 of the positive class of the stored predictions against the gold
    labels of the same rows, `labeled_rows` how many rows it rests on. Empty when predictions
    or gold labels do not exist yet, or no row of the window is annotated.
    """
    columns = ["_partition", "feature", "kind", "realized_f1", "labeled_rows", "current_rows"]
    if not all(_exists(con, t) for t in NEEDS):
        return pd.DataFrame(columns=columns)
    df = con.execute(
        (SQL / "realized_f1.sql").read_text(),
        {"positive": spec.positive_index, "start": start, "end": end},
    ).df()
    denominator = 2 * df["tp"] + df["fp"] + df["fn"]
    df["realized_f1"] = np.where(denominator > 0, 2 * df["tp"] / denominator.clip(lower=1), np.nan)
    df["feature"] = f"f1_{spec.classes[spec.positive_index]}"
    df["kind"] = "performance"
    df["current_rows"] = df["labeled_rows"]
    return df[columns]
