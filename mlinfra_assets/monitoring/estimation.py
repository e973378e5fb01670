"""The champion's performance estimated before labels arrive, per partition, from
`monitoring.predictions` (confidence-based performance estimation, as NannyML's CBPE).

The predictions table holds the champion's calibrated probabilities (`calibrated_<class>`,
calibrated on gold validation rows when the model was trained, see training.calibration). If
they are right, a row predicted as class k is right with probability c_k, so the expected true
positives, false positives and false negatives of each class, and from them the spec's metric
(`training.metric`: F1 of the positive class, macro-F1 or accuracy), follow from the
probabilities alone. The interval is the spread of the metric when the labels are drawn from
those probabilities (delta method): it says how much the realized figure may differ from the
estimate by chance on a partition of this size, not how wrong the calibration may be.

The rows are read once, in SQL where they live (`sql/estimation_moments.sql`: per partition
and predicted class, the rows and the probabilities' first and second moments);
the metric and its interval are a closed form of those few rows per partition, computed on
arrays (a query planning five CTEs and two joins for it cost more than the scan).

`monitoring.performance` puts the estimate beside the realized metric (annotated rows that were
not training rows, `performance.realized_metric`) per partition.
"""

from __future__ import annotations

import functools
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


def _classes(spec: DatasetSpec) -> list[int]:
    """The classes whose moments the metric needs: the positive class alone for F1, every class
    for macro-F1 and accuracy."""
    return [spec.positive_index] if spec.metric == "f1" else list(range(spec.n_classes))


def _pairs(spec: DatasetSpec) -> list[tuple[int, int]]:
    """The classes (k, l), k <= l, whose second moment the interval needs."""
    ks = _classes(spec)
    return [(k, j) for i, k in enumerate(ks) for j in ks[i:]]


def moments_sql(spec: DatasetSpec) -> str:
    """The one pass over `monitoring.predictions` (parameters $start, $end): per partition and
    predicted class, its rows, the model version and the calibrated probabilities' moments."""
    return _moments_sql(tuple(spec.calibrated_columns), tuple(_classes(spec)), tuple(_pairs(spec)))


@functools.lru_cache(maxsize=64)
def _moments_sql(cols: tuple[str, ...], classes: tuple[int, ...], pairs: tuple[tuple[int, int], ...]) -> str:
    """The query text of `moments_sql`, made once per set of columns: the template's file is
    read and formatted once a process, not at every estimate, and its comment lines are left
    out (DuckDB parses the text at every call; the comment was most of it)."""
    moments = [f"sum({cols[k]}) AS s{k}" for k in classes]
    moments += [f"sum({cols[k]} * {cols[j]}) AS s{k}_{j}" for k, j in pairs]
    lines = (SQL / "estimation_moments.sql").read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--")).format(
        moments=",\n       ".join(moments))


def estimate_from_moments(moments: dict[str, np.ndarray], spec: DatasetSpec) -> pd.DataFrame:
    """The estimate of each partition and its 95% interval (columns `ESTIMATED`) from the
    moments of `moments_sql` (its columns as arrays; a few rows per partition, so plain array
    arithmetic).

    A row predicted as class k is a true positive of k with probability c_k; a row predicted
    otherwise is a false negative of k with probability c_k. With n_k the rows predicted as k,
    A_k their expected true positives and B_k the expected false negatives, F1_k = 2 A_k /
    (n_k + A_k + B_k); the metric is F1 of the positive class, the mean F1 over the classes
    whose F1 is defined (macro) or sum_k A_k / n (accuracy). Its variance when each row's label
    is drawn from its calibrated probabilities, by the delta method: per row sum_k g_k^2 c_k -
    (sum_k g_k c_k)^2, g_k the metric's derivative by the row's indicator of class k, which
    depends on the row only through its predicted class, hence the per-class moments. NULL
    moments (rows scored before calibration existed) give no estimate (NaN).
    """
    if len(moments["_partition"]) == 0:
        return pd.DataFrame(columns=ESTIMATED)
    parts, inv = np.unique(moments["_partition"], return_inverse=True)
    p_n = len(parts)

    def col(name: str) -> np.ndarray:  # a masked array where the column has NULLs
        x = moments[name]
        return np.ma.filled(x.astype(float), np.nan) if np.ma.isMaskedArray(x) else x.astype(float, copy=False)

    def per_partition(x: np.ndarray) -> np.ndarray:
        return np.bincount(inv, weights=x, minlength=p_n)

    pred = np.asarray(moments["pred"])
    rows = col("rows_pred")
    n = per_partition(rows)
    g: dict[int, np.ndarray] = {}  # per moments row: the metric's derivative by class k's indicator
    f1: list[np.ndarray] = []
    expected_right = np.zeros(p_n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in _classes(spec):
            own = pred == k
            s_k = col(f"s{k}")
            a = per_partition(np.where(own, s_k, 0.0))  # expected true positives of k
            b = per_partition(np.where(own, 0.0, s_k))  # expected false negatives of k
            d = per_partition(np.where(own, rows, 0.0)) + a + b
            f1.append(np.where(d > 0, 2 * a / d, np.nan))
            ga = np.where(d > 0, 2 * (d - a) / d**2, 0.0)  # dF1_k / dA_k = 2 (n_k + B_k) / d^2
            gb = np.where(d > 0, -2 * a / d**2, 0.0)  # dF1_k / dB_k
            g[k] = np.where(own, ga[inv], gb[inv])
            expected_right += a
            if spec.metric == "accuracy":
                g[k] = np.where(own, 1 / n[inv], 0.0)
        if spec.metric == "f1":
            estimated = f1[0]
        elif spec.metric == "macro_f1":
            defined = (~np.isnan(np.stack(f1))).sum(axis=0)
            estimated = np.where(defined > 0, np.nansum(np.stack(f1), axis=0) / defined, np.nan)
            g = {k: gk / defined[inv] for k, gk in g.items()}
        else:  # accuracy
            estimated = expected_right / n
        per_row = sum(g[k] ** 2 * col(f"s{k}") for k in g) - sum(
            (1 if k == j else 2) * g[k] * g[j] * col(f"s{k}_{j}") for k, j in _pairs(spec))
    half = 1.96 * np.sqrt(np.maximum(per_partition(per_row), 0))
    versions: list[set[str]] = [set() for _ in range(p_n)]
    for i, version in zip(inv.tolist(), moments["model_version"].tolist(), strict=True):
        versions[i].add(str(version))
    model_version = np.empty(p_n, dtype=object)
    model_version[:] = [",".join(sorted(v)) for v in versions]
    return pd.DataFrame({  # fresh arrays: no copy (half the closed form's time was the frame's copies)
        "_partition": parts,
        "model_version": model_version,
        "rows": n.astype("int64"),
        "estimated": estimated,
        "estimated_low": np.maximum(estimated - half, 0),  # NaN stays NaN: no figure, no interval
        "estimated_high": np.minimum(estimated + half, 1),
    }, copy=False)


def estimated_metric(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: object, end: object) -> pd.DataFrame:
    """Per partition of [start, end) with predictions: the model version(s) that scored it, its
    rows, the estimated metric and its 95% interval (columns `ESTIMATED`): one SQL pass over the
    predictions for the moments, then the closed form over a few rows per partition."""
    return estimate_from_moments(con.execute(moments_sql(spec), {"start": start, "end": end}).fetchnumpy(), spec)


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
