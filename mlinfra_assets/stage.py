"""What each stage hands to definitions.py, and how its assets show figures in the UI."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dagster as dg

DIGITS = 4  # significant digits of a float shown in the UI (0.5011600928 -> 0.5012)
SHOWN = 5 * 10.0 ** -DIGITS  # the largest relative error of that rounding (0.10005 -> 0.1)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Stage:
    assets: list[Any] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)
    sensors: list[Any] = field(default_factory=list)
    schedules: list[Any] = field(default_factory=list)


def significant(x: float, digits: int = DIGITS) -> float:
    """`x` rounded to `digits` significant digits, never into its integer part.

    >>> significant(0.5011600928074246), significant(4.381762e-05), significant(631234.56)
    (0.5012, 4.382e-05, 631235.0)
    """
    if not math.isfinite(x) or x == 0:
        return float(x)
    return float(round(x, max(0, digits - 1 - math.floor(math.log10(abs(x))))))


def figure_or_reason(value: float | None, why: str) -> float | str:
    """A figure for metadata: the number, or why it is missing (never a silent 0)."""
    return why if value is None or math.isnan(value) else float(value)


def shown(value: Any) -> Any:
    """A metadata value with each float rounded by `significant` (inside JSON too); every other
    value (ints, booleans, text, markdown, URLs) as it was."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return significant(value)
    if isinstance(value, dg.FloatMetadataValue):
        return value if value.value is None else dg.MetadataValue.float(significant(value.value))
    if isinstance(value, dg.JsonMetadataValue):
        return dg.MetadataValue.json(shown(value.data))
    if isinstance(value, dg.MetadataValue):  # markdown, URLs, paths, tables: as they were
        return value
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shown(v) for v in value]
    return value


def _rounded(event: Any) -> Any:
    if isinstance(event, dg.MaterializeResult):
        return event._replace(
            metadata=None if event.metadata is None else shown(dict(event.metadata)),
            check_results=None if event.check_results is None else [_rounded(c) for c in event.check_results],
        )
    if isinstance(event, dg.AssetCheckResult):
        return event._replace(metadata=shown(dict(event.metadata)))
    if isinstance(event, dg.Output):
        return event.with_metadata(shown(dict(event.metadata)))
    return event


def round_figures(fn: F) -> F:
    """Decorate an asset's function (under `@dg.asset`): the floats of the metadata it returns or
    yields (MaterializeResult, its check results, AssetCheckResult, Output) are rounded to
    `DIGITS` significant digits, so the UI shows 0.5012, not 0.5011600928074246. The tables
    and MLflow keep full precision; only the metadata is rounded."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def each(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for event in fn(*args, **kwargs):
                yield _rounded(event)

        return each  # type: ignore[return-value]

    @functools.wraps(fn)
    def once(*args: Any, **kwargs: Any) -> Any:
        return _rounded(fn(*args, **kwargs))

    return once  # type: ignore[return-value]
