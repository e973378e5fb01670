"""The spec's `synthetic.constraints` as SDV constraints, and their check on sampled rows.

`column OP number` (e.g. `amount >= 0`) becomes a `ScalarBound`, an SDV programmable
constraint: SDV rejects and resamples every row that breaks it. `column OP column` becomes
SDV's own `Inequality` (the synthesizer learns the difference, so it always holds).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlinfra_assets.spec import _CONSTRAINT, DatasetSpec

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_NUMBER = re.compile(r"^-?[0-9.]+(?:[eE]-?[0-9]+)?$")


@dataclass(frozen=True)
class Constraint:
    text: str
    column: str
    op: str
    other: str | float  # a column name or a number

    def holds(self, frame: pd.DataFrame) -> pd.Series:
        """True where the row meets the constraint (NULL meets it: nullability is the spec's)."""
        left = frame[self.column]
        right = frame[self.other] if isinstance(self.other, str) else self.other
        met = OPS[self.op](left, right)
        missing = left.isna() | (frame[self.other].isna() if isinstance(self.other, str) else False)
        return met | missing


def parse(spec: DatasetSpec) -> list[Constraint]:
    """The spec's constraints, each column checked to be a numeric feature.

    Raises
    ------
    ValueError
        Naming the constraint and the column that is not a numeric feature.
    """
    found = []
    for text in spec.synthetic.constraints:
        column, op, other = _CONSTRAINT.match(text).groups()  # the spec validated the syntax
        value: str | float = float(other) if _NUMBER.match(other) else other
        for name in [column, *([value] if isinstance(value, str) else [])]:
            if name not in spec.numeric:
                raise ValueError(
                    f"synthetic.constraints {text!r}: {name!r} is not a numeric feature of the spec "
                    f"({', '.join(spec.numeric)})"
                )
        found.append(Constraint(text, column, op, value))
    return found


def to_sdv(constraints: list[Constraint], modeled: list[str]) -> list[Any]:
    """SDV constraint objects for the constraints on modeled columns (others are constant/null)."""
    from sdv.cag import Inequality

    from mlinfra_assets.synthetic.scalar_bound import ScalarBound

    out: list[Any] = []
    for c in constraints:
        columns = [c.column, *([c.other] if isinstance(c.other, str) else [])]
        if not set(columns) <= set(modeled):
            continue
        if isinstance(c.other, str):
            low, high = (c.other, c.column) if c.op in (">=", ">") else (c.column, c.other)
            out.append(Inequality(low, high, strict_boundaries=c.op in (">", "<")))
        else:
            out.append(ScalarBound(c.column, c.op, c.other))
    return out


def check(frame: pd.DataFrame, constraints: list[Constraint]) -> None:
    """Raise if a sampled row breaks a constraint (the last line of defence after SDV)."""
    for c in constraints:
        broken = int((~c.holds(frame)).sum())
        if broken:
            raise ValueError(f"{broken} synthetic rows break synthetic.constraints {c.text!r}")
