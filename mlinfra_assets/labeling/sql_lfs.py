"""Compile SQL labeling functions into one query, for DuckDB or Spark SQL.

The query reads the raw rows (`row_id`, the timestamp and the feature columns; NaN read
as NULL, since both engines order NaN above every number while Python compares it false)
and evaluates every SQL LF once per row; NULL votes abstain (-1); votes are SMALLINT.
- Spark (`checked_sql`): each vote is checked in the query; a value outside -1..k-1 stops
  it (`raise_error()`), and `first_bad_vote` then names the LF and its first offending row.
- DuckDB (`matrix_sql`): the votes are only cast; the label matrix builder checks the
  range from the written table's statistics (no second pass) and names the offender with
  `bad_vote` (see `labeling.matrix`).
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


def matrix_sql(lfs: list[LF], source: Source) -> str:
    """`row_id` and each SQL LF's vote as SMALLINT, NULL read as -1; the range is not checked.

    A vote beyond SMALLINT fails the cast (a conversion error); one inside SMALLINT but
    outside -1..k-1 is written: the caller checks the written range (`bad_vote`).
    """
    votes = ", ".join(f"CAST(coalesce({source.quote(lf.name)}, -1) AS SMALLINT) AS {source.quote(lf.name)}" for lf in lfs)
    return load_sql("lf_checked", checked=votes, votes=votes_sql(lfs, source))


def checked_sql(lfs: list[LF], source: Source, n_classes: int) -> str:
    """The label-matrix query with the range checked in it: `row_id` and one SMALLINT vote
    column per SQL LF; a vote outside -1..k-1 stops the query with `OUT_OF_RANGE`."""
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
    its columns (nothing is computed). All LFs are planned together first; each alone
    only when that fails, to name the culprit.
    """
    if not lfs:
        return
    try:
        if all(t.upper() in INTEGER_TYPES for t in result_types(votes_sql(lfs, source))[1:]):
            return
    except Exception:  # noqa: BLE001, S110 - the per-LF pass below reports it with the LF's name
        pass
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


def bad_vote(
    names: list[str], votes: str, source: Source, n_classes: int, first_row: Callable[[str], tuple | None]
) -> LabelingFunctionError | None:
    """The error for the first of `names` (in order) with a vote outside -1..k-1, or None.

    `votes` is a query with `row_id` and one column per name (raw LF results, or a written
    matrix); `first_row(query)` runs a query and returns its first row or None.
    """
    for name in names:
        row = first_row(load_sql("lf_first_bad", lf=source.quote(name), votes=votes, top=str(n_classes - 1)))
        if row is not None:
            return LabelingFunctionError(
                f"labeling function {name!r} voted {row[1]!r} on row_id {row[0]!r} (its first "
                f"offending row): votes must be -1 (abstain) or a class index 0..{n_classes - 1}"
            )
    return None


def first_bad_vote(
    lfs: list[LF], source: Source, n_classes: int, first_row: Callable[[str], tuple | None]
) -> LabelingFunctionError:
    """The error for the first LF (in definition order) with a vote outside -1..k-1.

    `first_row(query)` runs a query and returns its first row or None.
    """
    found = bad_vote([lf.name for lf in lfs], votes_sql(lfs, source), source, n_classes, first_row)
    return found or LabelingFunctionError(
        f"a SQL labeling function voted out of range ({', '.join(lf.name for lf in lfs)})"
    )
