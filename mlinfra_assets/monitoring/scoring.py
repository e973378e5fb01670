"""Score a window of raw rows with the champion and replace its rows in `monitoring.predictions`.

The table's platform columns start with `_` (`_row_id, _partition, _prediction,
_model_version, _scored_at`), so the views that put them next to a user's features never collide
with a feature named `prediction` or `row_id`. Beside them: one `prob_<class>` per class (the
model's own probabilities, whose argmax is `_prediction`) and one `calibrated_<class>` per class
(calibrated on gold validation rows at training, see training.calibration), which performance
estimation reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.resources import MLflowTracker, transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.partitions import partition_type

if TYPE_CHECKING:  # torch: imported where the champion is loaded, not with the code location
    from mlinfra_assets.training.model import ScoringModel

SQL = Path(__file__).parent / "sql"
TABLE = "monitoring.predictions"
ROW_ID, PREDICTION, VERSION, SCORED_AT = "_row_id", "_prediction", "_model_version", "_scored_at"
RENAMED = {"row_id": ROW_ID, "prediction": PREDICTION, "model_version": VERSION, "scored_at": SCORED_AT}


def load_champion(mlflow: MLflowTracker, spec: DatasetSpec) -> ScoringModel:
    """The model behind the registry alias `champion` of `spec.name` (version set)."""
    from mlinfra_assets.training.registry import load_scoring_model

    return load_scoring_model(mlflow, spec.name, "champion")


def _window_sql(spec: DatasetSpec) -> str:
    return (SQL / "predictions_window.sql").read_text().format(
        id_column=spec.id_column, features=", ".join(spec.feature_columns), relation=spec.raw_table)


def read_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: date, end: date
) -> pd.DataFrame:
    """`_row_id, _partition, <features>` of the raw rows whose partition is in [start, end)."""
    return con.execute(_window_sql(spec), [start, end]).df()


SCORE_BATCH_ROWS = 250_000  # raw rows scored and written at a time by score_window
HISTOGRAM_ROWS = 200_000  # scores kept (a seeded uniform sample) for the window's histogram


@dataclass
class WindowScores:
    """What `score_window` wrote: rows, the per-partition summary (`summary`), the predicted
    class shares, the mean confidence and a bounded sample of the shown scores."""

    rows: int
    per_partition: pd.DataFrame
    predicted_shares: dict[str, float]
    mean_confidence: float
    shown: np.ndarray


def score_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, model: ScoringModel, start: date, end: date,
    scored_at: datetime, key_of=str, table: str = TABLE, batch_rows: int = SCORE_BATCH_ROWS,  # noqa: ANN001
) -> WindowScores:
    """Score the raw rows of [start, end) and replace the window's rows of `table`, `batch_rows`
    rows at a time (read as Arrow record batches, scored, inserted) in one transaction: memory is
    one batch's whatever the window's size (a 10M-row window in one frame held several GiB)."""
    total = con.execute(f"SELECT count(*) FROM {spec.raw_table} WHERE _partition >= ? AND _partition < ?",
                        [start, end]).fetchall()[0][0]
    keep = min(1.0, HISTOGRAM_ROWS / max(total, 1))
    rng = np.random.default_rng(0)
    partials, shown, written = [], [], 0
    cursor = con.cursor()  # reads raw beside the writing transaction (one database, two connections)
    reader = cursor.sql(_window_sql(spec), params=[start, end]).to_arrow_reader(batch_rows)
    with transaction(con):
        for i, batch in enumerate(reader):
            scored = score(model, spec, batch.to_pandas(date_as_object=False), scored_at)  # as .df() types dates
            if i == 0:
                _prepare(con, spec, table, scored)
                con.execute(f"DELETE FROM {table} WHERE _partition >= ? AND _partition < ?", [start, end])
            written += _insert(con, spec, table, scored)
            partials.append(_partial(scored, spec))
            values = scored[spec.prob_columns[spec.positive_index]].to_numpy() if spec.n_classes == 2 \
                else confidence(scored, spec)
            shown.append(values[rng.random(len(values)) < keep])
    cursor.close()
    if not partials:
        return WindowScores(0, pd.DataFrame(), {}, float("nan"), np.empty(0))
    merged = pd.concat(partials).groupby("_partition", sort=True).sum()
    counts = merged[[f"_n{j}" for j in range(spec.n_classes)]].sum().to_numpy()
    return WindowScores(
        written, _summary_of(merged, spec, key_of),
        {c: round(float(n / max(counts.sum(), 1)), 6) for c, n in zip(spec.classes, counts, strict=True)},
        float(merged["_conf"].sum() / merged["_rows"].sum()), np.concatenate(shown),
    )


def score(
    model: ScoringModel, spec: DatasetSpec, rows: pd.DataFrame, scored_at: datetime
) -> pd.DataFrame:
    """The predictions table's rows for `rows`: one probability per class, the argmax, the
    version, one calibrated probability per class.

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
        {ROW_ID: rows[ROW_ID].to_numpy(), "_partition": rows["_partition"].to_numpy()}
    )
    for j, col in enumerate(spec.prob_columns):
        out[col] = probs[:, j]
    calibrated = model.calibration.apply(probs)
    for j, col in enumerate(spec.calibrated_columns):
        out[col] = calibrated[:, j]
    out[PREDICTION] = probs.argmax(axis=1).astype("int32")
    out[VERSION] = str(model.version)
    out[SCORED_AT] = pd.Timestamp(scored_at)
    return out


def replace_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: date, end: date, scored: pd.DataFrame,
    table: str = TABLE,
) -> int:
    """Delete the window's rows of `table` (the predictions, or the shadow's) and insert `scored`, in
    one transaction; returns rows written."""
    with transaction(con):
        _prepare(con, spec, table, scored)
        con.execute(f"DELETE FROM {table} WHERE _partition >= ? AND _partition < ?", [start, end])
        return _insert(con, spec, table, scored)


def _columns(spec: DatasetSpec) -> tuple[str, str]:
    """The table's column list, and the SELECT of them from a scored frame (`_partition` typed)."""
    names = [ROW_ID, "_partition", *spec.prob_columns, PREDICTION, VERSION, SCORED_AT, *spec.calibrated_columns]
    ptype = partition_type(spec)
    return ", ".join(names), ", ".join(f"CAST(_partition AS {ptype}) AS _partition" if n == "_partition" else n
                                       for n in names)


def _prepare(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, table: str, scored: pd.DataFrame) -> None:
    """The table, created like `scored` where it is missing, its columns brought up to date."""
    _, typed = _columns(spec)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
    schema, name = table.split(".")
    existing = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchall()}
    for old, new in RENAMED.items():  # a table made by an earlier version
        if old in existing and new not in existing:
            con.execute(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
    con.register("_scored", scored)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT {typed} FROM _scored LIMIT 0")
    finally:
        con.unregister("_scored")
    for col in spec.calibrated_columns:  # a table made before calibration: NULL for earlier rows
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {col} DOUBLE")


def _insert(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, table: str, scored: pd.DataFrame) -> int:
    columns, typed = _columns(spec)
    con.register("_scored", scored)
    try:
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {typed} FROM _scored")
    finally:
        con.unregister("_scored")
    return len(scored)


def confidence(scored: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """The probability of the predicted class, per row."""
    return scored[spec.prob_columns].to_numpy().max(axis=1)


def predicted_shares(scored: pd.DataFrame, spec: DatasetSpec) -> dict[str, float]:
    """The share of rows predicted as each class (every class, 0 included)."""
    counts = np.bincount(scored[PREDICTION].to_numpy(), minlength=spec.n_classes)
    total = max(int(counts.sum()), 1)
    return {c: round(float(n / total), 6) for c, n in zip(spec.classes, counts, strict=True)}


def summary(scored: pd.DataFrame, spec: DatasetSpec, key_of=str) -> pd.DataFrame:  # noqa: ANN001
    """Per partition: rows, mean confidence, the most predicted class and its share; for two
    classes the mean positive probability and the predicted positive rate too. Counted on arrays
    (a class count per partition), not per row in Python: a million rows in ~0.2 s."""
    return _summary_of(_partial(scored, spec).set_index("_partition").sort_index(), spec, key_of)


def _partial(scored: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Per partition of `scored`: rows, the sum of confidences (and of the positive probability,
    two classes) and the count of each predicted class: sums that add up across batches."""
    codes, parts = pd.factorize(scored["_partition"], sort=True)
    k, n_parts = spec.n_classes, len(parts)
    counts = np.bincount(codes * k + scored[PREDICTION].to_numpy(), minlength=n_parts * k).reshape(n_parts, k)
    out = pd.DataFrame({"_partition": parts, "_rows": counts.sum(axis=1),
                        "_conf": np.bincount(codes, weights=confidence(scored, spec), minlength=n_parts)})
    for j in range(k):
        out[f"_n{j}"] = counts[:, j]
    if k == 2:
        positive = spec.prob_columns[spec.positive_index]
        out["_pos"] = np.bincount(codes, weights=scored[positive].to_numpy(), minlength=n_parts)
    return out


def _summary_of(partial: pd.DataFrame, spec: DatasetSpec, key_of=str) -> pd.DataFrame:  # noqa: ANN001
    """`summary` from the per-partition sums of `_partial` (indexed by partition, in order)."""
    k = spec.n_classes
    counts = partial[[f"_n{j}" for j in range(k)]].to_numpy()
    rows = partial["_rows"].to_numpy()
    top = counts.argmax(axis=1)
    out = pd.DataFrame(
        {
            "partition": [key_of(p) for p in partial.index],
            "rows": rows,
            "mean_confidence": partial["_conf"].to_numpy() / rows,
            "most_predicted": np.asarray(spec.classes, dtype=object)[top],
            "most_predicted_share": counts[np.arange(len(rows)), top] / rows,
        }
    )
    if k == 2:
        out["mean_score"] = partial["_pos"].to_numpy() / rows
        out["positive_rate"] = counts[:, spec.positive_index] / rows
    return out


def score_histogram(scores: np.ndarray, title_column: str):  # noqa: ANN201 - a draw callback
    """A draw callback for plots.png_markdown: the histogram of a probability (0..1)."""

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        ax.hist(scores, bins=40, range=(0, 1), color="#4C72B0")
        ax.set_xlabel(title_column)
        ax.set_ylabel("rows")
        ax.set_yscale("log")

    return draw
