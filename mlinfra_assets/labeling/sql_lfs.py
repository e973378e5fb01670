"""Compile SQL labeling functions into one query, for DuckDB or Spark SQL.

The query reads the raw rows (`row_id`, the timestamp and the feature columns; NaN read
as NULL, since both engines order NaN above every number while Python compares it false),
evaluates every SQL LF once per row and checks each vote: a value outside -1..k-1 stops
the query (`error()` in DuckDB, `raise_error()` in Spark), and `first_bad_vote` then names
the LF and its first offending row. NULL votes abstain (-1). Votes are SMALLINT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from mlinfra_assets.labeling.forms import LF
from mlinfra_assets.labeling.lfs import LabelingFunctionError
from mlinfra_assets.labeling.queries import load_sql

Dialect = Literal["duckdb", "spark"]
OUT_OF_RANGE = "mlinfra: vote out of range"  # the marker of the in-query check's error
_ERROR_FN = {"duckdb": "error", "spark": "raise_error"}
_QUOTE = {"duckdb": '"', "spark": "`"}
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT", "BYTE", "SHORT", "INT", "LONG", '"NULL"', "NULL", "VOID"}


@dataclass(frozen=True)
class Source:
    """The rows SQL LFs see: `table` with its id column and the columns LFs may read."""

    table: str
    id_column: str
    columns: list[str]
    float_columns: set[str]
    dialect: Dialect = "duckdb"

    def quote(self, name: str) -> str:
        q = _QUOTE[self.dialect]
        return f"{q}{name}{q}"

    def sql(self) -> str:
        cols = []
        for c in self.columns:
            col = self.quote(c)
            cols.append(f"CASE WHEN isnan({col}) THEN NULL ELSE {col} END AS {col}" if c in self.float_columns else col)
        return load_sql("lf_source", id_column=self.quote(self.id_column), columns=", ".join(cols), table=self.table)


def votes_sql(lfs: list[LF], source: Source) -> str:
    """`row_id` and each SQL LF's raw result (unchecked), one column per LF."""
    votes = ", ".join(f"({lf.sql.expression}) AS {source.quote(lf.name)}" for lf in lfs)
    return load_sql("lf_votes", votes=votes, source=source.sql())


def checked_sql(lfs: list[LF], source: Source, n_classes: int) -> str:
    """The label-matrix query: `row_id` and one checked SMALLINT vote column per SQL LF."""
    top, error = n_classes - 1, _ERROR_FN[source.dialect]
    checked = []
    for lf in lfs:
        v = f"coalesce({source.quote(lf.name)}, -1)"
        checked.append(
            f"CASE WHEN {v} BETWEEN -1 AND {top} THEN CAST({v} AS SMALLINT) "
            f"ELSE CAST({error}('{OUT_OF_RANGE}: {lf.name}') AS SMALLINT) END AS {source.quote(lf.name)}"
        )
    return load_sql("lf_checked", checked=", ".join(checked), votes=votes_sql(lfs, source))


def check_expressions(
    lfs: list[LF], source: Source, result_types: Callable[[str], list[str]]
) -> None:
    """Compile each SQL LF alone and check it returns an integer; errors name the LF.

    `result_types(query)` runs the engine's planner on a query and returns the types of
    its columns (nothing is computed).
    """
    for lf in lfs:
        query = votes_sql([lf], source)
        try:
            types = result_types(query)
        except Exception as exc:  # noqa: BLE001 - the engine's parser/binder error, reported per LF
            raise LabelingFunctionError(
                f"SQL labeling function {lf.name!r} does not compile on {source.dialect}: "
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}. Its expression: "
                f"{lf.sql.expression}"
            ) from exc
        kind = types[-1].upper()
        if kind not in INTEGER_TYPES:
            raise LabelingFunctionError(
                f"SQL labeling function {lf.name!r} returns {kind}: return an integer class "
                f"index, -1 or NULL (abstain). Its expression: {lf.sql.expression}"
            )


def first_bad_vote(
    lfs: list[LF], source: Source, n_classes: int, first_row: Callable[[str], tuple | None]
) -> LabelingFunctionError:
    """The error for the first LF (in definition order) with a vote outside -1..k-1.

    `first_row(query)` runs a query and returns its first row or None.
    """
    votes = votes_sql(lfs, source)
    for lf in lfs:
        row = first_row(load_sql("lf_first_bad", lf=source.quote(lf.name), votes=votes, top=str(n_classes - 1)))
        if row is not None:
            return LabelingFunctionError(
                f"labeling function {lf.name!r} voted {row[1]!r} on row_id {row[0]!r} (its first "
                f"offending row): votes must be -1 (abstain) or a class index 0..{n_classes - 1}"
            )
    return LabelingFunctionError(f"a SQL labeling function voted out of range ({', '.join(lf.name for lf in lfs)})")
