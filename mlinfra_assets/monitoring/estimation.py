"""The champion's performance estimated before labels arrive, per partition, in SQL over
`monitoring.predictions` (confidence-based performance estimation, as NannyML's CBPE).

The predictions table holds the champion's calibrated probabilities (`calibrated_<class>`,
calibrated on gold validation rows when the model was trained, see training.calibration). If
they are right, a row predicted as class k is right with probability c_k, so the expected true
positives, false positives and false negatives of each class, and from them the spec's metric
(`training.metric`: F1 of the positive class, macro-F1 or accuracy), follow from the
probabilities alone. The interval is the spread of the metric when the labels are drawn from
those probabilities (delta method): it says how much the realized figure may differ from the
estimate by chance on a partition of this size, not how wrong the calibration may be.

`monitoring.performance` puts the estimate beside the realized metric (annotated rows that were
not training rows, `performance.realized_metric`) per partition.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.monitoring import performance
from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse.partitions import partition_type

SQL = Path(__file__).parent / "sql"
TABLE = "monitoring.performance"
ESTIMATED = ["_partition", "model_version", "rows", "estimated", "estimated_low", "estimated_high"]
COLUMNS = [*ESTIMATED, "metric", "realized_metric", "realized_low", "realized_high", "labeled_rows",
           "labeled_training_rows", "realized_note"]


def _gradient(spec: DatasetSpec, k: int) -> str | None:
    """The metric's derivative by a row's indicator of class k, for the rows predicted as `m.pred`
    (SQL over `m` moments and `f` figures); None where it is 0 for every row."""
    if spec.metric == "f1":
        return f"(CASE WHEN m.pred = {k} THEN f.ga{k} ELSE f.gb{k} END)" if k == spec.positive_index else None
    if spec.metric == "macro_f1":
        return f"(CASE WHEN m.pred = {k} THEN f.ga{k} ELSE f.gb{k} END / f.m)"
    return f"(CASE WHEN m.pred = {k} THEN 1.0 / f.n ELSE 0 END)"  # accuracy


def _estimate(spec: DatasetSpec) -> str:
    ks = range(spec.n_classes)
    if spec.metric == "f1":
        return f"f1_{spec.positive_index} AS estimated, 1 AS m"
    if spec.metric == "macro_f1":
        m = " + ".join(f"(f1_{k} IS NOT NULL)::INT" for k in ks)
        total = " + ".join(f"coalesce(f1_{k}, 0)" for k in ks)
        return f"({total}) / nullif({m}, 0) AS estimated, {m} AS m"
    return f"({' + '.join(f'a{k}' for k in ks)}) / n AS estimated, 1 AS m"  # accuracy


def estimated_sql(spec: DatasetSpec) -> str:
    """The estimation query for the spec's classes and metric (parameters $start, $end)."""
    ks = range(spec.n_classes)
    cols = spec.calibrated_columns
    grads = [(k, g) for k in ks if (g := _gradient(spec, k)) is not None]
    pairs = [(k, j) for i, (k, _) in enumerate(grads) for (j, _) in grads[i:]]
    d = "(n{k} + a{k} + b{k})"
    return (SQL / "estimated_performance.sql").read_text().format(
        moments=",\n           ".join(
            [f"sum({cols[k]}) AS s{k}" for k in ks] + [f"sum({cols[k]} * {cols[j]}) AS s{k}_{j}" for k, j in pairs]
        ),
        class_counts=",\n           ".join(
            f"coalesce(sum(rows_pred) FILTER (WHERE pred = {k}), 0) AS n{k}, "
            f"coalesce(sum(s{k}) FILTER (WHERE pred = {k}), 0) AS a{k}, "
            f"coalesce(sum(s{k}) FILTER (WHERE pred <> {k}), 0) AS b{k}" for k in ks
        ),
        class_f1=",\n           ".join(
            f"CASE WHEN {d.format(k=k)} > 0 THEN 2 * a{k} / {d.format(k=k)} END AS f1_{k}, "
            f"CASE WHEN {d.format(k=k)} > 0 THEN 2 * (n{k} + b{k}) / pow({d.format(k=k)}, 2) ELSE 0 END AS ga{k}, "
            f"CASE WHEN {d.format(k=k)} > 0 THEN -2 * a{k} / pow({d.format(k=k)}, 2) ELSE 0 END AS gb{k}"
            for k in ks
        ),
        estimate=_estimate(spec),
        # sum over the rows of sum_k g_k^2 c_k, and of (sum_k g_k c_k)^2 expanded into second moments
        first_term=" + ".join(f"pow({g}, 2) * m.s{k}" for k, g in grads),
        second_term=" + ".join(
            f"{1 if k == j else 2} * {dict(grads)[k]} * {dict(grads)[j]} * m.s{k}_{j}" for k, j in pairs
        ),
    )


def estimated_metric(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: object, end: object) -> pd.DataFrame:
    """Per partition of [start, end) with predictions: the model version(s) that scored it, its
    rows, the estimated metric and its 95% interval (columns `ESTIMATED`)."""
    return con.execute(estimated_sql(spec), {"start": start, "end": end}).df()


def performance_table(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: object, end: object) -> pd.DataFrame:
    """`monitoring.performance`'s rows of [start, end): the estimate of every scored partition
    and, where annotations arrived, the realized metric beside it (`COLUMNS`)."""
    estimated = estimated_metric(con, spec, start, end)
    realized = performance.realized_metric(con, spec, start, end)
    realized = realized.drop(columns=["feature", "kind", "current_rows"]) if len(realized) else pd.DataFrame(
        columns=[c for c in COLUMNS if c not in ESTIMATED and c != "metric"] + ["_partition"])
    out = estimated.merge(realized, on="_partition", how="left") if len(estimated) else pd.DataFrame(columns=COLUMNS)
    out["metric"] = performance.metric_name(spec)
    return out[COLUMNS]


def replace_window(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: object, end: object,
                   table: pd.DataFrame) -> None:
    """Delete [start, end)'s rows of `monitoring.performance` and insert `table`, in one transaction."""
    ddl = (SQL / "performance_ddl.sql").read_text().format(partition_type=partition_type(spec))
    with transaction(con, _performance=table):
        con.execute("CREATE SCHEMA IF NOT EXISTS monitoring")
        con.execute(ddl)
        con.execute(f"DELETE FROM {TABLE} WHERE _partition >= ? AND _partition < ?", [start, end])
        con.execute(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM _performance")


def summary(table: pd.DataFrame, key_of=str) -> pd.DataFrame:  # noqa: ANN001 - a partition -> key function
    """Per partition: rows, the estimate and its interval, the realized figure and its rows."""
    out = table.assign(partition=[key_of(p) for p in table["_partition"]])
    return out[["partition", "model_version", "rows", "estimated", "estimated_low", "estimated_high",
                "realized_metric", "labeled_rows"]]


def estimated_vs_realized(table: pd.DataFrame, metric: str, key_of=str):  # noqa: ANN001, ANN201 - a draw callback
    """A draw callback for plots.png_markdown: per partition the estimate (line) with its interval
    (band) and the realized figure (points with their bootstrap interval) where labels arrived."""

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        x = np.arange(len(table))
        ax.fill_between(x, table["estimated_low"].astype(float), table["estimated_high"].astype(float),
                        color="#4C72B0", alpha=0.2, label="estimate's 95% interval")
        ax.plot(x, table["estimated"].astype(float), color="#4C72B0", marker=".", label="estimated (no labels)")
        real = table["realized_metric"].astype(float)
        seen = real.notna().to_numpy()
        if seen.any():
            low, high = table["realized_low"].astype(float), table["realized_high"].astype(float)
            ax.errorbar(x[seen], real[seen], yerr=[(real - low)[seen], (high - real)[seen]], fmt="o",
                        color="#DD8452", capsize=3, label="realized (annotated rows)")
        step = max(1, len(table) // 12)
        ax.set_xticks(x[::step], [key_of(p) for p in table["_partition"]][::step], rotation=45, ha="right",
                      fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)

    return draw
