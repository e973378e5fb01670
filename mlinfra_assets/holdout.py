"""The frozen evaluation holdout: a fixed share of rows by a hash of the row id.

Holdout rows are never queued, never trained on, never fed to the synthesizer; they are
scored against the spec's gold labels only.

Membership is a function of the row id alone, defined by the platform rather than by the
warehouse engine: the id as text, its MD5 digest (RFC 1321, the same in every DuckDB and in
Python's hashlib), the first 8 hex digits as an unsigned integer, modulo 100; rows whose
bucket is under `training.holdout_percent` are holdout. DuckDB's own `hash()` is not used
here: its values are free to change between DuckDB releases, and an upgrade would reshuffle
which rows were ever evaluated on.
"""

from mlinfra_assets.spec import DatasetSpec

BUCKETS = 100
HEX_DIGITS = 8  # of the MD5 digest: a 32-bit number, spread evenly enough over 100 buckets


def holdout_bucket_sql(id_expr: str) -> str:
    """SQL for a row's holdout bucket in [0, 100): the first 8 hex digits of the MD5 of the id
    as text, modulo 100 (`id_expr` is a column or expression of the row id)."""
    digest = f"md5(CAST({id_expr} AS VARCHAR))"
    return f"(CAST('0x' || substr({digest}, 1, {HEX_DIGITS}) AS UBIGINT) % {BUCKETS})"


def holdout_predicate(spec: DatasetSpec, id_expr: str = "row_id") -> str:
    """SQL predicate true for holdout rows (`id_expr` is a column of the row id): those whose
    bucket (`holdout_bucket_sql`) is under `training.holdout_percent`."""
    return f"({holdout_bucket_sql(id_expr)} < {int(spec.training.holdout_percent)})"


def gold_from(spec: DatasetSpec) -> str:
    """SQL that selects `row_id, label` (class index) of the spec's gold labels, landed in
    `raw.gold` by the warehouse stage from the source's column, a file or a table."""
    if spec.gold is None:
        raise ValueError("the spec has no `gold:` section: there are no gold labels")
    return "SELECT row_id, label FROM raw.gold"


def evaluation_labels(spec: DatasetSpec) -> str:
    """SQL that selects `row_id, label` of the labels the holdout is scored on: the spec's gold
    labels, or without gold the human annotations (`labeling.gold_labels`); the holdout
    predicate picks the holdout rows among them."""
    if spec.gold is not None:
        return gold_from(spec)
    return "SELECT CAST(row_id AS VARCHAR) AS row_id, label FROM labeling.gold_labels"


def queue_skips_holdout(spec: DatasetSpec) -> bool:
    """With gold, holdout rows are never queued; without gold the holdout is made of
    annotated rows, so the queue must offer them too."""
    return spec.gold is not None
