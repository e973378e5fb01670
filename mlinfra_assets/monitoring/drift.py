"""Drift statistics in SQL: PSI, KS, chi-squared, JS and missing shares per partition and feature.

Every statistic is computed by DuckDB where the rows are, in a fixed number of passes that
do not sort the partition: numerics are counted into fine buckets found by arithmetic (a
monotone linear map of the value, `sql/numeric_histogram.sql`), and only the few buckets
that hold a PSI cut or may hold the KS maximum are counted value by value
(`sql/numeric_special.sql`); every figure stays exact (tested against scipy). Categoricals are
counted per category. Only the p-values are computed in Python, from the statistics and the
sample sizes.

An input is a column seen through two SQL FROM items: its reference values (`value`) and
its current values (`_partition, value`), so the same code measures raw features and the
model's scores, and runs unchanged on another engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.monitoring.decision import flag
from mlinfra_assets.spec import DatasetSpec

SQL = Path(__file__).parent / "sql"
EPS = 1e-4
BUCKETS = 65536  # fine buckets between the reference's 0.1% and 99.9% quantiles
REPORT_COLUMNS = [
    "_partition",
    "feature",
    "kind",
    "psi",
    "ks_stat",
    "ks_pvalue",
    "chi2_stat",
    "chi2_pvalue",
    "js_divergence",
    "new_categories",
    "missing_reference",
    "missing_current",
    "missing_change",
    "p_value",
    "p_adjusted",
    "realized_metric",
    "realized_low",
    "realized_high",
    "labeled_rows",
    "labeled_training_rows",
    "realized_note",
    "drifted",
    "partition_drifted",
    "reference_rows",
    "current_rows",
]


def _sql(name: str) -> str:
    return (SQL / name).read_text()


@dataclass(frozen=True)
class Input:
    """One column whose drift is measured.

    feature : its name in the report
    reference : a SQL FROM item exposing `value` (one row per reference row)
    current : a SQL FROM item exposing `_partition, value` (one row per current row)
    """

    feature: str
    reference: str
    current: str


@dataclass
class Window:
    """The inputs of one report and the named parameters their FROM items bind."""

    numeric: list[Input] = field(default_factory=list)
    categorical: list[Input] = field(default_factory=list)
    params: dict[str, object] = field(default_factory=dict)


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]):  # noqa: ANN202
    """Run `sql` with the named parameters it uses (DuckDB refuses unused ones)."""
    used = set(re.findall(r"\$([A-Za-z_]\w*)", sql))
    return con.execute(sql, {k: v for k, v in params.items() if k in used})


def _union(template: str, inputs: Sequence[Input], side: str) -> str:
    """The branches of `template`, one per input, joined by UNION ALL."""
    partition = "_partition," if side == "current" else ""
    branch = "\n".join(line for line in _sql(template).splitlines() if not line.startswith("--"))
    return "\nUNION ALL\n".join(
        branch.format(
            i=i, partition=partition, reference=inp.reference, source=getattr(inp, side)
        )
        for i, inp in enumerate(inputs)
    )


def training_set_columns(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """The (row id, provenance) columns of training.training_set: `_row_id, _source` (older
    training sets: `row_id, source`)."""
    names = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'training' AND table_name = 'training_set'"
    ).fetchall()}
    return ("_row_id", "_source") if "_row_id" in names else ("row_id", "source")


REFERENCE = "drift_reference_all"  # temp table: the model's whole reference, `_partition` kept
REFERENCE_SCORES = "drift_reference_scores_all"  # temp table: the model's output on it


def stage_reference(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, span: tuple[str, str] | None = None) -> int:
    """Stage the reference of a model (every raw row of the partitions it was trained on) as
    the temp table `drift_reference_all`; returns its rows.

    Parameters
    ----------
    con : a DuckDB connection (the temp table lives as long as it does)
    spec : the dataset spec; its feature names are the only identifiers put into SQL
    span : the (first, last) partition the model version recorded at training; None (a
        version that did not record it): the partitions training.training_set's real rows span
    """
    from mlinfra_assets.training.dataset import training_window
    from mlinfra_assets.warehouse.partitions import partition_type

    span = span or training_window(con, spec, training_set_columns(con))
    con.execute(
        _sql("stage_reference.sql").format(
            target=REFERENCE, relation=spec.raw_table, columns=", ".join(spec.numeric + spec.categorical),
            type=partition_type(spec),
        ),
        list(span) if span else [None, None],
    )
    return int(con.execute(f"SELECT count(*) FROM {REFERENCE}").fetchall()[0][0])


def reference_span(con: duckdb.DuckDBPyConnection) -> tuple[object, object] | None:
    """(first, last) `_partition` of the staged reference; None when it is empty."""
    first, last = con.execute(f"SELECT min(_partition), max(_partition) FROM {REFERENCE}").fetchall()[0]
    return None if first is None else (first, last)


def stage_reference_scores(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    predict_proba: Callable[[pd.DataFrame], np.ndarray],
    batch_rows: int = 100_000,
) -> None:
    """The model's probabilities on the staged reference as the temp table
    `drift_reference_scores_all`, each comparison's prediction reference. The reference is read
    and scored `batch_rows` rows at a time (`_ref_row` ranges), so memory does not grow with the
    training window."""
    features = ", ".join(spec.numeric + spec.categorical)
    last = int(con.execute(f"SELECT coalesce(max(_ref_row), 0) FROM {REFERENCE}").fetchall()[0][0])
    for first in range(1, last + 1, batch_rows):
        span = [first, first + batch_rows]
        rows = con.execute(
            f"SELECT _ref_row, {features} FROM {REFERENCE} WHERE _ref_row >= ? AND _ref_row < ? ORDER BY _ref_row", span
        ).df()
        scores = reference_predictions(spec, predict_proba(rows.drop(columns=["_ref_row"])))
        scores.insert(0, "_ref_row", rows["_ref_row"].to_numpy())
        con.register("_reference_scores", scores)
        try:  # _partition from the staged reference, typed as there (the range prunes its scan)
            select = (f"SELECT r._partition, s.* EXCLUDE (_ref_row) FROM _reference_scores s JOIN {REFERENCE} r "
                      "USING (_ref_row) WHERE r._ref_row >= ? AND r._ref_row < ?")
            con.execute(f"CREATE OR REPLACE TEMP TABLE {REFERENCE_SCORES} AS {select}" if first == 1
                        else f"INSERT INTO {REFERENCE_SCORES} {select}", span)
        finally:
            con.unregister("_reference_scores")


def stage_window(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    start: object,
    end: object,
    exclude: tuple[object, object] | None = None,
) -> Window:
    """The reference of one comparison (the staged reference, `stage_reference`, without the
    partitions in `exclude`) as the temp table `drift_reference` (and `drift_reference_scores`
    where the model's scores are staged), and the window's raw rows as the current side.

    Parameters
    ----------
    con : a DuckDB connection holding the staged reference
    spec : the dataset spec; its feature names are the only identifiers put into SQL
    start, end : the window's first partition and the one after its last (`_partition` values)
    exclude : (start, end) of partitions left out of the reference: the compared ones where
        the model was trained on them, so a partition never meets itself there
    """
    # views over the staged reference, not copies of it (a copy held the reference twice: the
    # drift step's peak 1.37 -> 1.29 GiB at 1M demo rows); the excluded span sits in a one-row
    # table the views read
    from mlinfra_assets.warehouse.partitions import partition_type

    ptype = partition_type(spec)  # the staged reference's `_partition` is the raw table's
    con.execute(f"CREATE OR REPLACE TEMP TABLE drift_exclude AS SELECT CAST(? AS {ptype}) AS lo, "
                f"CAST(? AS {ptype}) AS hi", list(exclude) if exclude else [None, None])
    keep = ("WHERE NOT coalesce(_partition >= (SELECT lo FROM drift_exclude) "
            "AND _partition < (SELECT hi FROM drift_exclude), false)")
    con.execute(f"CREATE OR REPLACE TEMP VIEW drift_reference AS SELECT * EXCLUDE (_ref_row, _partition) "
                f"FROM {REFERENCE} {keep}")
    scored = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [REFERENCE_SCORES]
    ).fetchall()[0][0]
    if scored:
        con.execute(f"CREATE OR REPLACE TEMP VIEW drift_reference_scores AS SELECT * EXCLUDE (_partition) "
                    f"FROM {REFERENCE_SCORES} {keep}")
    current = (
        "(SELECT _partition, {expr} AS value FROM "
        + spec.raw_table
        + " WHERE _partition >= $start AND _partition < $end)"
    )
    window = Window(params={"start": start, "end": end})
    for names, sql_type, inputs in (
        (spec.numeric, "DOUBLE", window.numeric),
        (spec.categorical, "VARCHAR", window.categorical),
    ):
        for c in names:
            expr = f"CAST({c} AS {sql_type})"
            inputs.append(
                Input(c, f"(SELECT {expr} AS value FROM drift_reference)", current.format(expr=expr))
            )
    return window


def window_sizes(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window) -> tuple[int, int]:
    """(partitions with rows in the window, reference rows) of a staged window."""
    partitions = _execute(
        con,
        f"SELECT count(DISTINCT _partition) FROM {spec.raw_table} "
        "WHERE _partition >= $start AND _partition < $end",
        window.params,
    ).fetchall()[0][0]
    reference = con.execute("SELECT count(*) FROM drift_reference").fetchall()[0][0]
    return int(partitions), int(reference)


CONFIDENCE = "_confidence"  # 3+ classes: the probability of the predicted class
PREDICTED_CLASS = "_predicted_class"  # 3+ classes: the predicted class, as a category


def prediction_inputs(spec: DatasetSpec) -> list[str]:
    """The report's prediction rows: the positive probability (two classes), or the
    confidence and the predicted class (3+ classes: their shares are what can move)."""
    if spec.n_classes == 2:
        return [spec.prob_columns[spec.positive_index]]
    return [CONFIDENCE, PREDICTED_CLASS]


def reference_predictions(spec: DatasetSpec, probs: np.ndarray) -> pd.DataFrame:
    """The reference side of the prediction inputs, from the model's probabilities on the
    reference rows: column `value` (two classes), or `confidence` and `predicted`."""
    probs = np.asarray(probs, dtype="float64")
    if spec.n_classes == 2:
        return pd.DataFrame({"value": probs[:, spec.positive_index]})
    return pd.DataFrame({
        "confidence": probs.max(axis=1),
        "predicted": np.asarray(spec.classes, dtype=object)[probs.argmax(axis=1)],
    })


def stage_prediction(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    window: Window,
    model_version: str,
) -> None:
    """Add the model's output as inputs of kind `prediction`: the predicted positive
    probability (two classes), or the confidence (numeric) and the predicted class
    (categorical: per-class predicted shares) for 3+ classes.

    Reference: the model's probabilities on the comparison's reference rows (temp table
    `drift_reference_scores`, from `stage_reference_scores` and `stage_window`); current:
    `monitoring.predictions` of the window made by the same model version.
    """
    window.params["version"] = model_version
    predictions = (
        "(SELECT _partition, {expr} AS value FROM monitoring.predictions "
        "WHERE _partition >= $start AND _partition < $end AND _model_version = $version)"
    )
    if spec.n_classes == 2:
        column = spec.prob_columns[spec.positive_index]
        window.numeric.append(Input(column, "drift_reference_scores", predictions.format(expr=column)))
        return
    window.params["classes"] = list(spec.classes)
    window.numeric.append(Input(
        CONFIDENCE, "(SELECT confidence AS value FROM drift_reference_scores)",
        predictions.format(expr=f"greatest({', '.join(spec.prob_columns)})"),
    ))
    window.categorical.append(Input(
        PREDICTED_CLASS, "(SELECT predicted AS value FROM drift_reference_scores)",
        predictions.format(expr="list_extract($classes, _prediction + 1)"),
    ))


def _numeric_stats(
    con: duckdb.DuckDBPyConnection, inputs: Sequence[Input], params: dict[str, object]
) -> dict[str, object]:
    """Reference statistics of each input into `drift_num_stats`; returns `params` with the
    parameters of the bucket arithmetic added ($feature_i, $lo_i, $inv_i, $buckets)."""
    out = {**params, "buckets": BUCKETS}
    out.update({f"feature_{i}": inp.feature for i, inp in enumerate(inputs)})
    branches = _union("numeric_reference_stats.sql", inputs, "reference")
    _execute(
        con,
        "CREATE OR REPLACE TEMP TABLE drift_num_stats AS "
        "SELECT feature, n, n_values, coalesce(lo, 0) AS lo, "
        "CASE WHEN hi > lo THEN $buckets / (hi - lo) ELSE 1.0 END AS inv, "
        f"coalesce(cuts, CAST([] AS DOUBLE[])) AS cuts FROM ({branches})",
        out,
    )
    bounds = dict(
        (feature, (lo, inv))
        for feature, lo, inv in con.execute("SELECT feature, lo, inv FROM drift_num_stats").fetchall()
    )
    for i, inp in enumerate(inputs):
        out[f"lo_{i}"], out[f"inv_{i}"] = (float(x) for x in bounds[inp.feature])
    return out


def numeric_drift(
    con: duckdb.DuckDBPyConnection,
    inputs: Sequence[Input],
    params: dict[str, object] | None = None,
    eps: float = EPS,
) -> pd.DataFrame:
    """PSI (reference-decile bins), KS statistic and p-value, missing shares per partition and
    numeric input.

    Three passes over the current rows, none of which sorts them: the fine histogram, the
    value-level counts of the special buckets, and nothing else (the rest works on counts).
    An input with no non-null value on one side has no KS figure (NaN); its missing shares and
    PSI (NULL is a bin) still say what happened.

    Returns
    -------
    DataFrame with `_partition, feature, psi, ks_stat, ks_pvalue, reference_rows, current_rows,
    missing_reference, missing_current`.
    """
    if not inputs:
        return pd.DataFrame(columns=["_partition", "feature", "psi", "ks_stat", "ks_pvalue"])
    p = _numeric_stats(con, inputs, params or {})
    for side, table in (("reference", "drift_num_ref_hist"), ("current", "drift_num_cur_hist")):
        sql = _union("numeric_histogram.sql", inputs, side)
        _execute(con, f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}", p)
    _execute(con, "CREATE OR REPLACE TEMP TABLE drift_num_special AS " + _sql("numeric_special.sql"), p)
    for side, table in (("reference", "drift_num_ref_values"), ("current", "drift_num_cur_values")):
        sql = _union("numeric_values.sql", inputs, side)
        _execute(con, f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}", p)
    df = _execute(con, _sql("numeric_drift.sql"), {**p, "eps": eps}).df()
    n, m = df["ks_reference_n"].to_numpy(), df["ks_current_n"].to_numpy()
    both = (n > 0) & (m > 0)
    df["ks_stat"] = df["ks_stat"].where(both)
    df["ks_pvalue"] = np.where(both, ks_pvalue(df["ks_stat"].fillna(0).to_numpy(), n, m), np.nan)
    return df.drop(columns=["ks_reference_n", "ks_current_n"])


def categorical_drift(
    con: duckdb.DuckDBPyConnection,
    inputs: Sequence[Input],
    params: dict[str, object] | None = None,
    eps: float = EPS,
) -> pd.DataFrame:
    """PSI over categories (new ones included), chi-squared and its p-value, Jensen-Shannon
    divergence and missing shares per partition and categorical input (one pass each side)."""
    from scipy.stats import chi2

    if not inputs:
        return pd.DataFrame(columns=["_partition", "feature", "psi", "chi2_stat", "chi2_pvalue"])
    p = {**(params or {}), **{f"feature_{i}": inp.feature for i, inp in enumerate(inputs)}}
    for side, table in (("reference", "drift_cat_ref_counts"), ("current", "drift_cat_cur_counts")):
        sql = _union("categorical_counts.sql", inputs, side)
        _execute(con, f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}", p)
    df = _execute(con, _sql("categorical_drift.sql"), {"eps": eps}).df()
    df["chi2_pvalue"] = chi2.sf(
        df["chi2_stat"].to_numpy(), np.maximum(df["chi2_dof"].to_numpy(), 1)
    )
    return df.drop(columns=["chi2_dof"])


EXACT_KS_SIZE = 10_000  # above this effective size, Vrbik's corrected limit instead of kstwo


def ks_pvalue(stat: np.ndarray, n_reference: np.ndarray, n_current: np.ndarray) -> np.ndarray:
    """Two-sided KS p-value from the statistic and the sample sizes.

    Kolmogorov's distribution at the effective size en = round(n*m / (n+m)), as
    `scipy.stats.ks_2samp(..., method="asymp")` computes it (`kstwo.sf(d, en)`), up to an
    effective size of `EXACT_KS_SIZE`. `kstwo.sf` costs O(en) per value (8 ms at 10k, 160 ms at
    200k; a report of 31 partitions x 10 features at 10M rows would spend minutes on it), so
    above that size the limit distribution with Vrbik's (2018) correction,
    `kstwobign.sf(x + 1/(6 sqrt(en)) + (x - 1)/(4 en))`, x = sqrt(en) d, is used: within 2.2e-6
    of `kstwo.sf` at en = 10k and 2.2e-7 at 100k (absolute; 0.03% relative where p > 1e-3),
    tested against it in tests/monitoring/test_drift_stats.py.
    """
    from scipy.stats.distributions import kstwo, kstwobign

    n = np.asarray(n_reference, dtype="float64")
    m = np.asarray(n_current, dtype="float64")
    d = np.asarray(stat, dtype="float64")
    effective = np.maximum(np.round(n * m / np.maximum(n + m, 1)), 1)
    out = np.empty(np.broadcast(d, effective).shape)
    d, effective = np.broadcast_to(d, out.shape), np.broadcast_to(effective, out.shape)
    small = effective <= EXACT_KS_SIZE
    out[small] = kstwo.sf(d[small], effective[small])
    root = np.sqrt(effective[~small])
    x = root * d[~small]
    out[~small] = kstwobign.sf(x + 1 / (6 * root) + (x - 1) / (4 * effective[~small]))
    return np.clip(out, 0.0, 1.0)


def drift_report(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    window: Window,
    performance: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The flagged report of a window: features, the prediction rows if staged, and the
    `performance` rows (realized metric, see performance.realized_metric) if given."""
    num = numeric_drift(con, window.numeric, window.params)
    num["kind"] = np.where(num["feature"].isin(spec.numeric), "numeric", "prediction")
    cat = categorical_drift(con, window.categorical, window.params)
    cat["kind"] = np.where(cat["feature"].isin(spec.categorical), "categorical", "prediction")
    parts = [num, cat] + ([performance] if performance is not None and len(performance) else [])
    report = pd.concat(parts, ignore_index=True)
    for col in REPORT_COLUMNS:
        if col not in report:
            report[col] = np.nan
    report = flag(report, spec.thresholds)
    report["realized_note"] = report["realized_note"].astype("object").where(report["realized_note"].notna(), None)
    for col in ("new_categories", "reference_rows", "current_rows", "labeled_rows", "labeled_training_rows"):
        report[col] = report[col].fillna(0).astype("int64")
    return report.sort_values(["_partition", "kind", "feature"]).reset_index(drop=True)[
        REPORT_COLUMNS
    ]
