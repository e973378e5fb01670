"""Apply Python labeling functions (vectorized and row-wise) to one chunk of rows.

Every vote is checked: an LF that raises, returns the wrong number of votes, or votes
outside -1..k-1 fails with its name and the first offending row's `row_id`.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Number

import numpy as np
import pandas as pd
import pyarrow as pa

from mlinfra_assets.labeling.forms import LF, VectorizedLabelingFunction, lf_frame
from mlinfra_assets.labeling.lfs import LabelingFunctionError


def _py(value: object) -> object:
    """A NumPy scalar as the plain Python value (so messages read `row_id 19`)."""
    return value.item() if isinstance(value, np.generic) else value


def _rule(n_classes: int) -> str:
    return f"votes must be -1 (abstain) or a class index 0..{n_classes - 1}"


def checked_rowwise(lf: LF, n_classes: int):  # noqa: ANN201 - a snorkel LabelingFunction
    """Snorkel LF that calls `lf.rowwise` and names the LF and row when it fails.

    Snorkel's applier silently drops negative votes (it keeps `y >= 0`), so the range is
    checked here, row by row, before the applier sees the vote.
    """
    from snorkel.labeling import LabelingFunction

    inner = lf.rowwise

    def vote(x: pd.Series) -> int:
        try:
            y = inner(x)
        except Exception as exc:  # noqa: BLE001 - any failure of user code is reported with its row
            raise LabelingFunctionError(
                f"labeling function {lf.name!r} raised {type(exc).__name__}: {exc} on row_id "
                f"{_py(x['row_id'])!r} (its first offending row)"
            ) from exc
        ok = isinstance(y, Number) and not isinstance(y, complex) and float(y).is_integer()
        if not (ok and -1 <= y < n_classes):
            raise LabelingFunctionError(
                f"labeling function {lf.name!r} returned {_py(y)!r} on row_id {_py(x['row_id'])!r} (its first "
                f"offending row): {_rule(n_classes)}"
            )
        return int(y)

    return LabelingFunction(lf.name, f=vote)


def apply_rowwise(frame: pd.DataFrame, lfs: list[LF], n_classes: int) -> np.ndarray:
    """Snorkel's PandasLFApplier on one chunk: an (n_rows, n_lfs) int16 matrix."""
    from snorkel.labeling import PandasLFApplier

    applier = PandasLFApplier([checked_rowwise(lf, n_classes) for lf in lfs])
    return applier.apply(frame, progress_bar=False).astype(np.int16)


def apply_vectorized(frame: pd.DataFrame, lf: VectorizedLabelingFunction, n_classes: int) -> np.ndarray:
    """One vectorized LF on one chunk: its int16 votes, checked."""
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
    numeric = votes.dtype.kind in "iub" or votes.dtype.kind == "f"
    as_float = votes.astype(np.float64) if numeric else None
    ok = (
        np.isfinite(as_float) & (np.floor(as_float) == as_float) & (as_float >= -1) & (as_float < n_classes)
        if as_float is not None
        else np.zeros(len(votes), dtype=bool)
    )
    if not ok.all():
        j = int(np.argmin(ok))
        raise LabelingFunctionError(
            f"labeling function {lf.name!r} returned {_py(votes[j])!r} on row_id {_py(ids.iloc[j])!r} (its first "
            f"offending row): {_rule(n_classes)}"
        )
    return votes.astype(np.int16)


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


def apply_python(chunk: pd.DataFrame, lfs: list[LF], forms: dict[str, str], n_classes: int) -> pa.Table:
    """Votes of the Python-form LFs on one chunk: `row_id` and one int16 column per LF.

    An Arrow table over the NumPy vote arrays (no copy), ready for DuckDB to insert.
    """
    frame = lf_frame(chunk)
    out = {"row_id": chunk["row_id"].to_numpy()}
    rowwise = [lf for lf in lfs if forms[lf.name] == "rowwise"]
    if rowwise:
        L = apply_rowwise(frame, rowwise, n_classes)
        out |= {lf.name: L[:, j] for j, lf in enumerate(rowwise)}
    for lf in lfs:
        if forms[lf.name] == "vectorized":
            out[lf.name] = apply_vectorized(frame, lf.vectorized, n_classes)
    return pa.table({name: out[name] for name in ["row_id", *(lf.name for lf in lfs)]})
