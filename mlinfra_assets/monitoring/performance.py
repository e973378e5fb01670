"""Realized model quality per partition, once annotations for the partition's rows arrive.

Only labeled rows that were not training rows count (a training row's label, or a weak label of
it, trained the model: scoring it says little of rows the model has not seen). The figure comes
with how many rows it rests on, how many labeled rows were left out as training rows, and a 95%
bootstrap interval; with fewer than `thresholds.min_labeled_rows` rows it is not a number but
"too few labels".
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training.metrics import metric_score

SQL = Path(__file__).parent / "sql"
NEEDS = ("monitoring.predictions", "labeling.gold_labels")
TRAINING = "training.training_set"
NO_TRAINING_SET = "(SELECT NULL::VARCHAR AS _row_id WHERE false)"
COLUMNS = ["_partition", "feature", "kind", "realized_metric", "realized_low", "realized_high", "labeled_rows",
           "labeled_training_rows", "realized_note", "current_rows"]
RESAMPLES = 200


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


def interval(spec: DatasetSpec, labels: np.ndarray, predicted: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """The 2.5% and 97.5% percentiles of the metric over `RESAMPLES` bootstrap resamples of the rows
    (resamples where it is undefined are left out; NaN when all are)."""
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(RESAMPLES):
        pick = rng.integers(0, len(labels), len(labels))
        scores.append(metric_score(spec.metric, labels[pick], predicted[pick], spec.n_classes, spec.positive_index))
    scores = np.asarray(scores, dtype="float64")
    scores = scores[~np.isnan(scores)]
    if not len(scores):
        return float("nan"), float("nan")
    return float(np.percentile(scores, 2.5)), float(np.percentile(scores, 97.5))


def realized_metric(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: object, end: object
) -> pd.DataFrame:
    """One report row (kind `performance`) per partition of [start, end) with annotated rows.

    `realized_metric` is the spec's training metric (`training.metric`: F1 of the positive
    class, macro-F1 or accuracy) of the stored predictions against the human labels of the
    partition's labeled rows that are not in training.training_set; `labeled_rows` is how many,
    `labeled_training_rows` how many labeled rows were left out as training rows,
    `realized_low` / `realized_high` a 95% bootstrap interval. With fewer than
    `thresholds.min_labeled_rows` rows the figure is NaN and `realized_note` says "too few
    labels"; NaN with no note where the metric is undefined (e.g. F1 with no positive predicted
    nor labeled). Empty when predictions or labels do not exist yet, or no row of the window is
    annotated.
    """
    if not all(_exists(con, t) for t in NEEDS):
        return pd.DataFrame(columns=COLUMNS)
    training = TRAINING if _exists(con, TRAINING) else NO_TRAINING_SET
    sql = (SQL / "realized_labels.sql").read_text().format(training=training)
    rows = con.execute(sql, {"start": start, "end": end}).df()
    least = spec.thresholds.min_labeled_rows
    out = []
    for partition, group in rows.groupby("_partition", sort=True):
        unseen = group[~group["trained"]]
        labels, predicted = unseen["label"].to_numpy(), unseen["predicted"].to_numpy()
        score, low, high, note = float("nan"), float("nan"), float("nan"), None
        if len(unseen) < least:
            note = (f"too few labels: {len(unseen)} labeled rows that were not training rows, "
                    f"thresholds.min_labeled_rows is {least}")
        else:
            score = metric_score(spec.metric, labels, predicted, spec.n_classes, spec.positive_index)
            low, high = interval(spec, labels, predicted)
        out.append((partition, metric_name(spec), "performance", score, low, high, len(unseen),
                    int(group["trained"].sum()), note, len(group)))
    return pd.DataFrame(out, columns=COLUMNS)
