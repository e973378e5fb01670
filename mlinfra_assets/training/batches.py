"""The training set as arrays, streamed from DuckDB in Arrow record batches.

Dagster-free. `stream_arrays` reads `training.training_set` batch by batch (DuckDB hands
over Arrow record batches; no whole-table pandas frame) and encodes each batch into
preallocated-by-growth numpy arrays: raw numerics (NaN kept for the preprocessor to fill),
categorical codes against a vocabulary built on the way, soft targets, weights, labels and
the source of each row. A 1M-row set takes a few seconds and about 80 bytes per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec

SOURCES = ("gold", "weak", "synthetic")
BATCH_ROWS = 131_072
# the columns the platform adds beside the features (reserved prefix `_`, see spec.RESERVED_PREFIX)
ROW_ID, LABEL, WEIGHT, SOURCE = "_row_id", "_label", "_weight", "_source"


def target_columns(spec: DatasetSpec) -> list[str]:
    """The soft-target columns of the training set: `_` + each of `spec.prob_columns`."""
    return [f"_{c}" for c in spec.prob_columns]


@dataclass
class TrainingArrays:
    """One row per training row; `codes` index `vocab[col]` + 1 (0 = missing or unknown)."""

    numeric: np.ndarray  # float32 [n, n_numeric], NaN where missing
    codes: np.ndarray  # int64 [n, n_categorical]
    vocab: dict[str, list[str]]
    targets: np.ndarray  # float32 [n, n_classes], rows sum to 1
    weights: np.ndarray  # float32 [n]
    labels: np.ndarray  # int64 [n], hard label (argmax of the soft target for weak rows)
    source: np.ndarray  # int8 [n], index into SOURCES
    missing: dict[str, int] = field(default_factory=dict)  # NaN count per numeric column

    def __len__(self) -> int:
        return len(self.weights)

    @property
    def gold(self) -> np.ndarray:
        return self.source == SOURCES.index("gold")

    def rows(self, mask: np.ndarray) -> TrainingArrays:
        """The rows where `mask` is true (same vocabulary)."""
        return TrainingArrays(self.numeric[mask], self.codes[mask], self.vocab, self.targets[mask],
                              self.weights[mask], self.labels[mask], self.source[mask], self.missing)


def _column(batch, name: str) -> np.ndarray:  # noqa: ANN001 - a pyarrow RecordBatch
    return batch.column(name).to_numpy(zero_copy_only=False)


def collect(batches: Iterable, spec: DatasetSpec) -> TrainingArrays:
    """Encode Arrow record batches of training rows (features, `_prob_<class>`, `_weight`,
    `_source`; see `target_columns`) into `TrainingArrays`.

    Raises
    ------
    ValueError
        naming the column, on infinite feature values, on missing or negative soft targets or
        weights, and on an unknown `source`.
    """
    index: dict[str, dict[str, int]] = {c: {} for c in spec.categorical}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("num", "cat", "t", "w", "y", "s")}
    for batch in batches:
        n = batch.num_rows
        num = np.empty((n, len(spec.numeric)), dtype="float32")
        for j, col in enumerate(spec.numeric):
            values = np.asarray(_column(batch, col), dtype="float64")
            if np.isinf(values).any():
                raise ValueError(
                    f"training set column {col!r} has {int(np.isinf(values).sum())} infinite values: "
                    "fix or quarantine those rows upstream (NaN is imputed, infinity is not)"
                )
            num[:, j] = values
        cat = np.zeros((n, len(spec.categorical)), dtype="int64")
        for j, col in enumerate(spec.categorical):
            encoded = batch.column(col).dictionary_encode()
            seen = index[col]
            local = np.array([seen.setdefault(str(v), len(seen) + 1) for v in encoded.dictionary.to_pylist()]
                             + [0], dtype="int64")
            cat[:, j] = local[encoded.indices.fill_null(len(local) - 1).to_numpy()]
        targets = np.column_stack([_column(batch, c) for c in target_columns(spec)]).astype("float32")
        weights = np.asarray(_column(batch, WEIGHT), dtype="float32")
        for name, values in (("_prob_<class>", targets), (WEIGHT, weights)):
            if not np.isfinite(values).all() or (values < 0).any():
                raise ValueError(f"training set column {name} has missing, infinite or negative values: "
                                 "rebuild training/training_set from valid weak labels and weights")
        sources = pd.Series(_column(batch, SOURCE)).map({s: i for i, s in enumerate(SOURCES)})
        if sources.isna().any():
            raise ValueError(f"training set column {SOURCE} has values outside {SOURCES}")
        for key, value in zip(("num", "cat", "t", "w", "s"), (num, cat, targets, weights, sources), strict=True):
            parts[key].append(np.asarray(value))
        parts["y"].append(targets.argmax(axis=1))
    if not parts["w"]:
        raise ValueError("the training set is empty: materialize training/training_set first")
    numeric = np.concatenate(parts["num"])
    codes = np.concatenate(parts["cat"])
    vocab = {}
    for j, col in enumerate(spec.categorical):  # renumber codes in sorted vocabulary order
        names = sorted(index[col], key=lambda v: v)
        remap = np.zeros(len(index[col]) + 1, dtype="int64")
        remap[[index[col][v] for v in names]] = np.arange(1, len(names) + 1)
        codes[:, j] = remap[codes[:, j]]
        vocab[col] = names
    targets = np.concatenate(parts["t"])
    targets /= targets.sum(axis=1, keepdims=True).clip(min=1e-12)
    return TrainingArrays(
        numeric, codes, vocab, targets, np.concatenate(parts["w"]), np.concatenate(parts["y"]).astype("int64"),
        np.concatenate(parts["s"]).astype("int8"),
        missing={c: int(np.isnan(numeric[:, j]).sum()) for j, c in enumerate(spec.numeric)},
    )


def stream_arrays(con, spec: DatasetSpec, select_sql: str, batch_rows: int = BATCH_ROWS) -> TrainingArrays:  # noqa: ANN001
    """Stream a query's training rows from DuckDB, `batch_rows` Arrow rows at a time (DuckDB's
    streaming reader), and encode them (see `collect`). The reader is closed even on error."""
    reader = con.sql(select_sql).to_arrow_reader(batch_rows)
    try:
        return collect(reader, spec)
    finally:
        reader.close()


def from_frame(df: pd.DataFrame, spec: DatasetSpec) -> TrainingArrays:
    """`TrainingArrays` of an in-memory training set (tests, notebooks)."""
    import pyarrow as pa

    if df.empty:
        raise ValueError("the training set is empty: materialize training/training_set first")
    return collect(pa.Table.from_pandas(df, preserve_index=False).to_batches(BATCH_ROWS), spec)


@dataclass(frozen=True)
class Recent:
    """Rows of the latest scored partitions (features only, a sample) and the positive share the
    champion's calibrated probabilities expect there: what the decision may flag at most
    (`trainer`, `decision.cap_to_recent`). `rows` empty: no cap, `where` says why."""

    rows: pd.DataFrame
    positive_share: float
    where: str

    @classmethod
    def none(cls, why: str) -> Recent:
        return cls(pd.DataFrame(), float("nan"), why)
