"""The frozen evaluation holdout: a fixed share of rows by hash of the row id.

Holdout rows are never queued, never trained on, never fed to the synthesizer; they are
scored against the spec's gold labels only.
"""

from mlinfra_assets.spec import DatasetSpec


def holdout_predicate(spec: DatasetSpec, id_expr: str = "row_id") -> str:
    """SQL predicate true for holdout rows (`id_expr` is a column of the row id)."""
    return f"(hash(CAST({id_expr} AS VARCHAR)) % 100) < {int(spec.training.holdout_percent)}"


def gold_from(spec: DatasetSpec) -> str:
    """SQL that selects `row_id, label` of the spec's gold table (evaluation only)."""
    if spec.gold is None:
        raise ValueError("the spec has no `gold:` section: evaluation needs gold labels")
    id_col = spec.gold.id_column or spec.id_column
    return f"SELECT {id_col} AS row_id, {spec.gold.column} AS label FROM {spec.gold.table}"
