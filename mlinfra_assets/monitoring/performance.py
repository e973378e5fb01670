"""Realized model quality per partition, once annotations for the partition's rows arrive."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training.metrics import metric_score

SQL = Path(__file__).parent / "sql"
NEEDS = ("monitoring.predictions", "labeling.gold_labels")
COLUMNS = ["_partition", "feature", "kind", "realized_metric", "labeled_rows", "current_rows"]


def _exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


def metric_name(spec: DatasetSpec) -> str:
    """The realized figure's name: `f1_<positive class>`, `macro_f1` or `accuracy`."""
    return f"f1_{spec.classes[spec.positive_index]}" if spec.metric == "f1" else spec.metric


def realized_metric(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: object, end: object
) -> pd.DataFrame:
    """One report row (kind `performance`) per partition of [start, end) with annotated rows.

    `realized_metric` is the spec's training metric (`training.metric`: F1 of the positive
    class, macro-F1 or accuracy) of the stored predictions against the human labels of the
    same rows; NaN where it is undefined (e.g. F1 with no positive predicted nor labeled).
    `labeled_rows` is how many rows it rests on. Empty when predictions or labels do not
    exist yet, or no row of the window is annotated.
    """
    if not all(_exists(con, t) for t in NEEDS):
        return pd.DataFrame(columns=COLUMNS)
    rows = con.execute((SQL / "realized_labels.sql").read_text(), {"start": start, "end": end}).df()
    out = []
    for partition, group in rows.groupby("_partition", sort=True):
        score = metric_score(
            spec.metric, group["label"].to_numpy(), group["predicted"].to_numpy(),
            spec.n_classes, spec.positive_index,
        )
        out.append((partition, metric_name(spec), "performance", score, len(group), len(group)))
    return pd.DataFrame(out, columns=COLUMNS)
