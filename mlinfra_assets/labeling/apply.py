"""Apply labeling functions to the raw rows, read from DuckDB in bounded chunks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from mlinfra_assets.labeling.lfs import LabelingFunctionError, LFSet
from mlinfra_assets.resources import Warehouse
from mlinfra_assets.spec import DatasetSpec

CHUNK_ROWS = 50_000


def raw_chunks(
    warehouse: Warehouse, spec: DatasetSpec, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield the raw rows ordered by id, `chunk_rows` at a time (keyset pagination).

    Each chunk has `row_id`, the timestamp and the feature columns; each read opens and
    closes its own short read-only connection.
    """
    cols = ", ".join([spec.timestamp_column, *spec.feature_columns])
    first = f"SELECT {spec.id_column} AS row_id, {cols} FROM {spec.raw_table}"
    last_id = None
    while True:
        where, params = ("", [chunk_rows])
        if last_id is not None:
            where, params = f" WHERE {spec.id_column} > ?", [last_id, chunk_rows]
        chunk = warehouse.query_df(f"{first}{where} ORDER BY {spec.id_column} LIMIT ?", params)
        if chunk.empty:
            return
        yield chunk
        if len(chunk) < chunk_rows:
            return
        last_id = chunk["row_id"].iloc[-1:].tolist()[0]  # a plain Python value to bind


def apply_lfs(chunks: Iterator[pd.DataFrame], lf_set: LFSet, n_classes: int) -> pd.DataFrame:
    """Run Snorkel's PandasLFApplier over each chunk and stack the votes.

    Parameters
    ----------
    chunks
        DataFrames with a `row_id` column and the columns the functions read.
    lf_set
        The labeling functions.
    n_classes
        Number of classes: a vote must be -1 (abstain) or a class index below it.

    Returns
    -------
    pandas.DataFrame
        `row_id` and one int16 column per labeling function (the label matrix).
    """
    from snorkel.labeling import PandasLFApplier

    applier = PandasLFApplier(lf_set.lfs)
    ids, votes = [], []
    for chunk in chunks:
        L = applier.apply(chunk, progress_bar=False)
        bad = (L < -1) | (L >= n_classes)
        if bad.any():
            j = int(np.argwhere(bad.any(axis=0))[0][0])
            raise LabelingFunctionError(
                f"labeling function {lf_set.names[j]!r} in {lf_set.module} voted "
                f"{int(L[bad[:, j], j][0])}: votes must be -1 (abstain) or 0..{n_classes - 1}"
            )
        ids.append(chunk["row_id"].to_numpy())
        votes.append(L.astype(np.int16))
    if not ids:
        raise ValueError("the raw table has no rows: materialize the raw partitions first")
    matrix = pd.DataFrame(np.vstack(votes), columns=lf_set.names)
    matrix.insert(0, "row_id", np.concatenate(ids))
    return matrix


def coverage_table(matrix: pd.DataFrame, names: list[str], classes: list[str]) -> pd.DataFrame:
    """Per labeling function: the share of rows it votes on and its votes per class."""
    rows = []
    for name in names:
        col = matrix[name].to_numpy()
        row = {"lf": name, "coverage": float((col != -1).mean())}
        for k, cls in enumerate(classes):
            row[f"votes_{cls}"] = int((col == k).sum())
        rows.append(row)
    return pd.DataFrame(rows)
