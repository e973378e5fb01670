"""Drift statistics in SQL: PSI, KS, chi-squared, JS and missing shares per partition and feature.

The statistics run in DuckDB over four long-format temp tables (`drift_ref_num`,
`drift_cur_num`, `drift_ref_cat`, `drift_cur_cat`: one row per row and feature), so the
same SQL runs unchanged on another engine. Only the p-values are computed in Python, from
the statistics and the sample sizes.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.monitoring.decision import flag
from mlinfra_assets.spec import DatasetSpec

SQL = Path(__file__).parent / "sql"
EPS = 1e-4
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
    "realized_f1",
    "labeled_rows",
    "drifted",
    "partition_drifted",
    "reference_rows",
    "current_rows",
]


def _sql(name: str) -> str:
    return (SQL / name).read_text()


def stage_window(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: object, end: object
) -> None:
    """Stage the reference (real training rows) and the window's raw rows as long temp tables.

    Parameters
    ----------
    con : a DuckDB connection (temp tables live as long as it does)
    spec : the dataset spec; its feature names are the only identifiers put into SQL
    start, end : the window's first day and the day after its last (dates)
    """
    groups = [("num", spec.numeric, "DOUBLE"), ("cat", spec.categorical, "VARCHAR")]
    for suffix, columns, sql_type in groups:
        if not columns:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE drift_ref_{suffix} (feature VARCHAR, value {sql_type})"
            )
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE drift_cur_{suffix} "
                f"(_partition DATE, feature VARCHAR, value {sql_type})"
            )
            continue
        casts = ", ".join(f"CAST({c} AS {sql_type}) AS {c}" for c in columns)
        names = {"casts": casts, "columns": ", ".join(columns)}
        con.execute(
            _sql("stage_reference.sql").format(
                target=f"drift_ref_{suffix}", relation=spec.raw_table, id=spec.id_column, **names
            )
        )
        con.execute(
            _sql("stage_current.sql").format(
                target=f"drift_cur_{suffix}", relation=spec.raw_table, **names
            ),
            {"start": start, "end": end},
        )


def stage_prediction(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    start: object,
    end: object,
    reference_scores: np.ndarray,
    model_version: str,
) -> int:
    """Add the predicted positive probability as one more numeric input (kind `prediction`).

    Reference: the model's scores on the reference rows; current: `monitoring.predictions`
    of the window made by the same model version. Returns the current rows staged.
    """
    column = spec.prob_columns[spec.positive_index]
    con.register(
        "_reference_scores", pd.DataFrame({"value": np.asarray(reference_scores, dtype="float64")})
    )
    try:
        con.execute("INSERT INTO drift_ref_num SELECT ?, value FROM _reference_scores", [column])
    finally:
        con.unregister("_reference_scores")
    rows = con.execute(
        f"INSERT INTO drift_cur_num SELECT _partition, ?, {column} FROM monitoring.predictions "
        "WHERE _partition >= ? AND _partition < ? AND model_version = ?",
        [column, start, end, model_version],
    ).fetchall()
    return int(rows[0][0])


def numeric_drift(con: duckdb.DuckDBPyConnection, eps: float = EPS) -> pd.DataFrame:
    """PSI (reference-decile bins), KS statistic and p-value, missing shares per partition and
    numeric feature.

    Reads `drift_ref_num(feature, value)` and `drift_cur_num(_partition, feature, value)`. A
    feature with no non-null value on one side has no KS figure (NaN); its missing shares and
    PSI (NULL is a bin) still say what happened.

    Returns
    -------
    DataFrame with `_partition, feature, psi, ks_stat, ks_pvalue, reference_rows, current_rows,
    missing_reference, missing_current`.
    """
    df = con.execute(_sql("numeric_drift.sql"), {"eps": eps}).df()
    n, m = df["ks_reference_n"].to_numpy(), df["ks_current_n"].to_numpy()
    both = (n > 0) & (m > 0)
    df["ks_stat"] = df["ks_stat"].where(both)
    df["ks_pvalue"] = np.where(both, ks_pvalue(df["ks_stat"].fillna(0).to_numpy(), n, m), np.nan)
    return df.drop(columns=["ks_reference_n", "ks_current_n"])


def categorical_drift(con: duckdb.DuckDBPyConnection, eps: float = EPS) -> pd.DataFrame:
    """PSI over categories (new ones included), chi-squared and its p-value per partition and feature.

    Reads `drift_ref_cat(feature, value)` and `drift_cur_cat(_partition, feature, value)`.
    """
    from scipy.stats import chi2

    df = con.execute(_sql("categorical_drift.sql"), {"eps": eps}).df()
    df["chi2_pvalue"] = chi2.sf(
        df["chi2_stat"].to_numpy(), np.maximum(df["chi2_dof"].to_numpy(), 1)
    )
    return df.drop(columns=["chi2_dof"])


def ks_pvalue(stat: np.ndarray, n_reference: np.ndarray, n_current: np.ndarray) -> np.ndarray:
    """Two-sided KS p-value from the statistic and the sample sizes.

    Kolmogorov's distribution at the effective size round(n*m / (n+m)), as
    `scipy.stats.ks_2samp(..., method="asymp")` computes it.
    """
    from scipy.stats.distributions import kstwo

    n = np.asarray(n_reference, dtype="float64")
    m = np.asarray(n_current, dtype="float64")
    effective = np.maximum(np.round(n * m / np.maximum(n + m, 1)), 1)
    return np.clip(kstwo.sf(np.asarray(stat, dtype="float64"), effective), 0.0, 1.0)


def drift_report(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, performance: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The flagged report over the staged tables: features, the prediction row if staged, and
    the `performance` rows (realized F1, see performance.realized_f1) if given."""
    num = numeric_drift(con)
    num["kind"] = np.where(num["feature"].isin(spec.numeric), "numeric", "prediction")
    cat = categorical_drift(con).assign(kind="categorical")
    parts = [num, cat] + ([performance] if performance is not None and len(performance) else [])
    report = pd.concat(parts, ignore_index=True)
    for col in REPORT_COLUMNS:
        if col not in report:
            report[col] = np.nan
    report = flag(report, spec.thresholds)
    for col in ("new_categories", "reference_rows", "current_rows", "labeled_rows"):
        report[col] = report[col].fillna(0).astype("int64")
    return report.sort_values(["_partition", "kind", "feature"]).reset_index(drop=True)[
        REPORT_COLUMNS
    ]
