"""The three ways to write a labeling function, and how an LF's forms are grouped.

- SQL: `sql_labeling_function(name, expression)`, an expression over the raw row's
  columns returning a class index or -1 (NULL also abstains). All SQL LFs are compiled
  into one query that runs where the data is (DuckDB, or Spark).
- vectorized: `@vectorized_labeling_function()` on a function from a DataFrame chunk to
  an integer array, one vote per row; applied in bounded chunks.
- row-wise: Snorkel's own `@labeling_function()`, applied with Snorkel's PandasLFApplier.

Forms with the same `name` are the same LF written more than once; the label matrix runs
the fastest form it has (SQL, then vectorized, then row-wise) unless a form is asked for.
Python forms see chunks in NumPy dtypes: integer columns holding NULLs arrive as float64
with NaN (as in classic pandas), NULL strings as None. SQL forms see NaN as NULL, so a
comparison with a missing value is false in every form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

ABSTAIN = -1  # the vote of an LF that does not apply to a row
Form = Literal["sql", "vectorized", "rowwise"]
FORMS: tuple[Form, ...] = ("sql", "vectorized", "rowwise")  # fastest first


class SQLLabelingFunction:
    """A labeling function written as a SQL expression (see the module docstring)."""

    def __init__(self, name: str, expression: str) -> None:
        if not expression or not expression.strip():
            raise ValueError(f"SQL labeling function {name!r}: the expression is empty")
        self.name = name
        self.expression = expression.strip()

    def __repr__(self) -> str:
        return f"SQLLabelingFunction({self.name!r}, {self.expression!r})"


class VectorizedLabelingFunction:
    """A labeling function from a DataFrame chunk to one integer vote per row."""

    def __init__(self, name: str, f: Callable[[pd.DataFrame], Any]) -> None:
        self.name = name
        self.f = f

    def __call__(self, df: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.f(df))

    def __repr__(self) -> str:
        return f"VectorizedLabelingFunction({self.name!r})"


def sql_labeling_function(name: str, expression: str) -> SQLLabelingFunction:
    """An LF as a SQL expression, e.g. `CASE WHEN amount > 100 THEN 1 ELSE -1 END`.

    Parameters
    ----------
    name
        The LF's name: the column of `labeling.label_matrix`; the same name as the LF's
        other forms, if it has any.
    expression
        Portable SQL (it runs on DuckDB and on Spark) over the raw table's columns,
        returning an integer: a class index, -1 or NULL (abstain).
    """
    return SQLLabelingFunction(name, expression)


def vectorized_labeling_function(
    name: str | None = None,
) -> Callable[[Callable[[pd.DataFrame], Any]], VectorizedLabelingFunction]:
    """Decorate `f(df) -> array of votes` as a vectorized LF (name: `name` or f's name)."""

    def wrap(f: Callable[[pd.DataFrame], Any]) -> VectorizedLabelingFunction:
        return VectorizedLabelingFunction(name or f.__name__, f)

    return wrap


@dataclass(frozen=True)
class LF:
    """One labeling function and the forms it is written in."""

    name: str
    sql: SQLLabelingFunction | None = None
    vectorized: VectorizedLabelingFunction | None = None
    rowwise: Any = None  # snorkel.labeling.LabelingFunction

    @property
    def forms(self) -> list[Form]:
        return [f for f in FORMS if getattr(self, f) is not None]


def choose_forms(lfs: list[LF], form: str = "fastest") -> dict[str, Form]:
    """The form each LF runs in: its fastest, or `form` for all of them.

    Raises
    ------
    ValueError
        When `form` is unknown or some LF is not written in it (they are named).
    """
    if form == "fastest":
        return {lf.name: lf.forms[0] for lf in lfs}
    if form not in FORMS:
        raise ValueError(f"form {form!r} is unknown: use fastest, {', '.join(FORMS)}")
    missing = [lf.name for lf in lfs if getattr(lf, form) is None]
    if missing:
        raise ValueError(f"form {form!r} was asked for, but LF(s) {missing} are not written in it")
    return {lf.name: form for lf in lfs}  # type: ignore[misc]


def lf_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A chunk as Python LFs see it: nullable integer/boolean columns as float64 with NaN.

    DuckDB returns integer columns with NULLs as pandas `Int64` (pd.NA), on which a
    row-wise rule like `x.n >= 3` raises; NaN compares false, as NULL does in SQL.
    """
    out = df.copy(deep=False)
    for col, dtype in df.dtypes.items():
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iub":
            out[col] = df[col].astype("float64")
    return out
