"""The frozen evaluation holdout: a fixed share of rows by hash of the row id.

Holdout rows are never queued, never trained on, never fed to the synthesizer; they are
scored against the spec's gold labels only.
"""

from mlinfra_assets.spec import DatasetSpec


def holdout_predicate(spec: DatasetSpec, id_expr: str = "row_id") -> str:
    """SQL predicate true for holdout rows (`id_expr` is a column of the row id)."""
    return f"(hash(CAST({id_expr} AS VARCHAR)) % 100) < {int(spec.training.holdout_percent)}"


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
