"""Score a window of raw rows with the champion and replace its rows in `monitoring.predictions`."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.resources import MLflowTracker, transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training.model import ScoringModel

SQL = Path(__file__).parent / "sql"
TABLE = "monitoring.predictions"


def load_champion(mlflow: MLflowTracker, spec: DatasetSpec) -> ScoringModel:
    """The model behind the registry alias `champion` of `spec.name` (version set)."""
    from mlinfra_assets.training.registry import load_scoring_model

    return load_scoring_model(mlflow, spec.name, "champion")


def read_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: date, end: date
) -> pd.DataFrame:
    """`row_id, _partition, <features>` of the raw rows whose partition is in [start, end)."""
    sql = (
        (SQL / "predictions_window.sql")
        .read_text()
        .format(
            id_column=spec.id_column,
            features=", ".join(spec.feature_columns),
            relation=spec.raw_table,
        )
    )
    return con.execute(sql, [start, end]).df()


def score(
    model: ScoringModel, spec: DatasetSpec, rows: pd.DataFrame, scored_at: datetime
) -> pd.DataFrame:
    """The predictions table's rows for `rows`: one probability per class, the argmax, the version.

    Raises
    ------
    ValueError
        when the model's classes are not the spec's (a model trained for another spec).
    """
    if list(model.classes) != list(spec.classes):
        raise ValueError(
            f"model version {model.version} predicts classes {model.classes}, the spec has "
            f"{spec.classes}: register a model trained on this spec"
        )
    probs = model.predict_proba(rows[spec.feature_columns]).astype("float64")
    out = pd.DataFrame(
        {"row_id": rows["row_id"].to_numpy(), "_partition": rows["_partition"].to_numpy()}
    )
    for j, col in enumerate(spec.prob_columns):
        out[col] = probs[:, j]
    out["prediction"] = probs.argmax(axis=1).astype("int32")
    out["model_version"] = str(model.version)
    out["scored_at"] = pd.Timestamp(scored_at)
    return out


def replace_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: date, end: date, scored: pd.DataFrame
) -> int:
    """Delete the window's predictions and insert `scored`, in one transaction; returns rows written."""
    names = ["row_id", "_partition", *spec.prob_columns, "prediction", "model_version", "scored_at"]
    columns = ", ".join(names)
    typed = ", ".join("_partition::DATE AS _partition" if n == "_partition" else n for n in names)
    with transaction(con, _scored=scored):
        con.execute("CREATE SCHEMA IF NOT EXISTS monitoring")
        con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} AS SELECT {typed} FROM _scored LIMIT 0")
        con.execute(f"DELETE FROM {TABLE} WHERE _partition >= ? AND _partition < ?", [start, end])
        con.execute(f"INSERT INTO {TABLE} ({columns}) SELECT {typed} FROM _scored")
    return len(scored)


def summary(scored: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Per partition: rows, mean positive probability, predicted positive rate."""
    positive = spec.prob_columns[spec.positive_index]
    grouped = scored.assign(
        day=pd.to_datetime(scored["_partition"]).dt.strftime("%Y-%m-%d"),
        positive=scored["prediction"] == spec.positive_index,
    ).groupby("day")
    return pd.DataFrame(
        {
            "rows": grouped.size(),
            "mean_score": grouped[positive].mean(),
            "positive_rate": grouped["positive"].mean(),
        }
    ).reset_index()


def score_histogram(scores: np.ndarray, title_column: str):  # noqa: ANN201 - a draw callback
    """A draw callback for plots.png_markdown: the histogram of the positive probability."""

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        ax.hist(scores, bins=40, range=(0, 1), color="#4C72B0")
        ax.set_xlabel(title_column)
        ax.set_ylabel("rows")
        ax.set_yscale("log")

    return draw
