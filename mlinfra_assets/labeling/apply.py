"""Apply Python labeling functions (vectorized and row-wise) to one chunk of rows.

Every vote is checked: an LF that raises, returns the wrong number of votes, or votes
anything but -1, a class index 0..k-1 (a number) or a class name (a str) fails with its
name, the value and the first offending row's `row_id`. Class names become indexes.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Number

import numpy as np
import pandas as pd
import pyarrow as pa

from mlinfra_assets.labeling.forms import LF, VectorizedLabelingFunction, lf_frame
from mlinfra_assets.labeling.lfs import LabelingFunctionError, vote_reader


def _py(value: object) -> object:
    """A NumPy scalar as the plain Python value (so messages read `row_id 19`)."""
    return value.item() if isinstance(value, np.generic) else value


def vote_index(y: object, names: dict[str, int], n_classes: int) -> int | None:
    """One vote as a class index (-1 abstains), or None when it is no valid vote: a str is
    read as a class name, a number as an index (so the int 1 and the str "1" differ), None
    abstains (as NULL does in SQL: `np.where(cond, "cat", None)` mixes names and abstains)."""
    if y is None:
        return -1
    if isinstance(y, str):
        return names.get(y)
    ok = isinstance(y, Number) and not isinstance(y, (complex, bool)) and float(y).is_integer()
    return int(y) if ok and -1 <= y < n_classes else None


def checked_rowwise(lf: LF, classes: list[str]):  # noqa: ANN201 - a snorkel LabelingFunction
    """Snorkel LF that calls `lf.rowwise`, maps a class name to its index, and names the LF
    and row when it fails.

    Snorkel's applier silently drops negative votes (it keeps `y >= 0`), so the range is
    checked here, row by row, before the applier sees the vote.
    """
    from snorkel.labeling import LabelingFunction

    inner = lf.rowwise
    names, rule = vote_reader(classes)
    n_classes = len(classes)

    def vote(x: pd.Series) -> int:
        try:
            y = inner(x)
        except Exception as exc:  # noqa: BLE001 - any failure of user code is reported with its row
            raise LabelingFunctionError(
                f"labeling function {lf.name!r} raised {type(exc).__name__}: {exc} on row_id "
                f"{_py(x['row_id'])!r} (its first offending row)"
            ) from exc
        k = vote_index(_py(y), names, n_classes)
        if k is None:
            raise LabelingFunctionError(
                f"labeling function {lf.name!r} returned {_py(y)!r} on row_id {_py(x['row_id'])!r} (its first "
                f"offending row): {rule}"
            )
        return k

    return LabelingFunction(lf.name, f=vote)


def apply_rowwise(frame: pd.DataFrame, lfs: list[LF], classes: list[str]) -> np.ndarray:
    """Snorkel's PandasLFApplier on one chunk: an (n_rows, n_lfs) int16 matrix of class indexes."""
    from snorkel.labeling import PandasLFApplier

    applier = PandasLFApplier([checked_rowwise(lf, classes) for lf in lfs])
    return applier.apply(frame, progress_bar=False).astype(np.int16)


def apply_vectorized(frame: pd.DataFrame, lf: VectorizedLabelingFunction, classes: list[str]) -> np.ndarray:
    """One vectorized LF on one chunk: its int16 votes (class names mapped to indexes), checked."""
    n_classes = len(classes)
    names, rule = vote_reader(classes)
    ids = frame["row_id"]
    try:
        votes = lf(frame)
    except Exception as exc:  # noqa: BLE001 - reported with the first row that makes it raise
        bad = _first_raising_row(lambda n: lf(frame.iloc[:n]), len(frame))
        raise LabelingFunctionError(
            f"labeling function {lf.name!r} raised {type(exc).__name__}: {exc}; its first offending "
            f"row is row_id {_py(ids.iloc[bad])!r}"
        ) from exc
    if votes.ndim != 1 or len(votes) != len(frame):
        raise LabelingFunctionError(
            f"labeling function {lf.name!r} returned {votes.shape} votes for a chunk of {len(frame)} "
            f"rows (first row_id {_py(ids.iloc[0])!r}): return one vote per row, in the chunk's order"
        )
    if votes.dtype.kind in "iuf":
        as_float = votes.astype(np.float64)
        ok = np.isfinite(as_float) & (np.floor(as_float) == as_float) & (as_float >= -1) & (as_float < n_classes)
        out = np.where(ok, as_float, -1).astype(np.int16)
    elif votes.dtype.kind in "OUS":  # class names, or a mix of names and indexes
        mapped = [vote_index(_py(v), names, n_classes) for v in votes.tolist()]
        ok = np.fromiter((m is not None for m in mapped), dtype=bool, count=len(mapped))
        out = np.fromiter((-1 if m is None else m for m in mapped), dtype=np.int16, count=len(mapped))
    else:  # booleans, dates, ...: no vote
        ok, out = np.zeros(len(votes), dtype=bool), None
    if not ok.all():
        j = int(np.argmin(ok))
        raise LabelingFunctionError(
            f"labeling function {lf.name!r} returned {_py(votes[j])!r} on row_id {_py(ids.iloc[j])!r} (its first "
            f"offending row): {rule}"
        )
    return out


def _first_raising_row(call: Callable[[int], object], n: int) -> int:
    """The smallest k such that `call(k + 1)` raises (binary search over prefixes)."""
    lo, hi = 1, n  # call(hi) raises; find the shortest raising prefix
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            call(mid)
            lo = mid + 1
        except Exception:  # noqa: BLE001
            hi = mid
    return lo - 1


def apply_python(chunk: pd.DataFrame, lfs: list[LF], forms: dict[str, str], classes: list[str]) -> pa.Table:
    """Votes of the Python-form LFs on one chunk: `row_id` and one int16 column per LF.

    An Arrow table over the NumPy vote arrays (no copy), ready for DuckDB to insert.
    """
    frame = lf_frame(chunk)
    out = {"row_id": chunk["row_id"].to_numpy()}
    rowwise = [lf for lf in lfs if forms[lf.name] == "rowwise"]
    if rowwise:
        L = apply_rowwise(frame, rowwise, classes)
        out |= {lf.name: L[:, j] for j, lf in enumerate(rowwise)}
    for lf in lfs:
        if forms[lf.name] == "vectorized":
            out[lf.name] = apply_vectorized(frame, lf.vectorized, classes)
    return pa.table({name: out[name] for name in ["row_id", *(lf.name for lf in lfs)]})
