"""LF diagnostics in SQL: Snorkel LFAnalysis's figures over the label matrix in DuckDB.

One scan of `labeling.label_matrix` gives, per LF, Snorkel's `lf_summary` numbers:
polarity (the classes it votes), coverage (share of rows it votes on), overlaps (share
of rows it votes on with at least one other LF voting), conflicts (share of rows it votes
on where another LF votes a different class), and, on the rows with a gold label, its
correct and incorrect votes and empirical accuracy (NULL where it never votes on gold).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from mlinfra_assets.labeling.label_model import MATRIX
from mlinfra_assets.labeling.queries import load_sql

SUMMARY_COLUMNS = ["lf", "polarity", "coverage", "overlaps", "conflicts", "correct", "incorrect", "emp_acc"]


def summary_sql(names: list[str], gold_sql: str | None, table: str = MATRIX) -> str:
    """The one-row aggregate behind `lf_summary` (`n`, then `<lf>__<figure>` columns)."""
    q = [f'"{n}"' for n in names]
    aggregates = []
    for n, c in zip(names, q, strict=True):
        votes = f"{c} <> -1"
        aggregates += [
            f'coalesce(list_sort(list(DISTINCT {c}) FILTER (WHERE {votes})), []::SMALLINT[]) AS "{n}__polarity"',
            f'count(*) FILTER (WHERE {votes}) AS "{n}__coverage"',
            f'count(*) FILTER (WHERE {votes} AND n_votes > 1) AS "{n}__overlaps"',
            f'count(*) FILTER (WHERE {votes} AND hi > lo) AS "{n}__conflicts"',
            f'count(*) FILTER (WHERE {votes} AND {c} = gold) AS "{n}__correct"',
            f'count(*) FILTER (WHERE {votes} AND {c} <> gold) AS "{n}__incorrect"',
        ]
    return load_sql(
        "lf_summary",
        columns=", ".join(f"m.{c}" for c in q),
        n_votes=" + ".join(f"CAST({c} <> -1 AS INTEGER)" for c in q),
        votes=", ".join(f"nullif({c}, -1)" for c in q),
        gold="g.label" if gold_sql else "CAST(NULL AS SMALLINT)",
        join=f"LEFT JOIN ({gold_sql}) AS g ON CAST(m.row_id AS VARCHAR) = CAST(g.row_id AS VARCHAR)" if gold_sql else "",
        table=table,
        aggregates=",\n    ".join(aggregates),
    )


def lf_summary(
    con: duckdb.DuckDBPyConnection, names: list[str], classes: list[str], gold_sql: str | None, table: str = MATRIX
) -> pd.DataFrame:
    """Snorkel's `LFAnalysis.lf_summary` in the `labeling.lf_summary` contract, in SQL.

    Parameters
    ----------
    con
        A connection to the warehouse holding `table`.
    names
        The LF columns of the matrix.
    classes
        The spec's classes: polarity is written as class names.
    gold_sql
        A query of `row_id, label` (one row per row_id), or None. Coverage, overlaps and
        conflicts are over all rows; `correct`, `incorrect`, `emp_acc` over gold rows.

    Returns
    -------
    pandas.DataFrame
        One row per LF with the columns of `SUMMARY_COLUMNS`.
    """
    row = con.execute(summary_sql(names, gold_sql, table)).df().iloc[0]
    n = int(row["n"])
    if n == 0:
        raise ValueError(f"{table} has no rows: materialize labeling/label_matrix first")
    out = []
    for name in names:
        correct, incorrect = int(row[f"{name}__correct"]), int(row[f"{name}__incorrect"])
        judged = correct + incorrect
        out.append(
            {
                "lf": name,
                "polarity": ",".join(classes[int(k)] for k in row[f"{name}__polarity"]),
                "coverage": row[f"{name}__coverage"] / n,
                "overlaps": row[f"{name}__overlaps"] / n,
                "conflicts": row[f"{name}__conflicts"] / n,
                "correct": correct if judged else None,
                "incorrect": incorrect if judged else None,
                "emp_acc": correct / judged if judged else None,
            }
        )
    frame = pd.DataFrame(out, columns=SUMMARY_COLUMNS)
    return frame.astype({"correct": "Int64", "incorrect": "Int64", "emp_acc": "Float64"})
