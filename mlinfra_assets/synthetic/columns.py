"""Which columns the synthesizer models, and their SDV metadata (Dagster-free).

Columns SDV cannot learn are taken out of the model, each with a warning that names it:
a column null in every fit row (synthetic value NULL), a constant column (synthetic value the
constant), and high-cardinality text (more than `synthetic.max_categories` distinct values:
synthetic values drawn from the column's real frequencies, independent of the other columns).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.synthetic.data import LABEL

TABLE = "real"
ALLOWED_SDTYPES = {"numerical", "categorical", "ordinal", "boolean"}


@dataclass
class ColumnPlan:
    modeled: list[str]  # features the synthesizer learns (the label is always modeled)
    fixed: dict[str, Any] = field(default_factory=dict)  # column -> constant (None: all null)
    marginal: dict[str, dict[str, list]] = field(default_factory=dict)  # column -> values, p
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"modeled": self.modeled, "fixed": self.fixed, "marginal": self.marginal, "warnings": self.warnings}

    @classmethod
    def from_json(cls, raw: dict) -> ColumnPlan:
        return cls(raw["modeled"], raw["fixed"], raw["marginal"], raw["warnings"])

    def complete(self, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        """Add the unmodeled columns to sampled rows (marginal draws seeded by `seed`)."""
        rng = np.random.default_rng(seed)
        out = frame.copy()
        for column, value in self.fixed.items():
            out[column] = value
        for column, dist in self.marginal.items():
            out[column] = rng.choice(np.asarray(dist["values"], dtype=object), size=len(out), p=dist["p"])
        return out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def plan_columns(frame: pd.DataFrame, spec: DatasetSpec) -> ColumnPlan:
    """Profile the fit rows: model every feature except all-null, constant and high-cardinality ones."""
    plan = ColumnPlan(modeled=[])
    limit = spec.synthetic.max_categories
    for column in spec.feature_columns:
        values = frame[column].dropna()
        distinct = values.nunique()
        if values.empty:
            plan.fixed[column] = None
            plan.warnings.append(f"feature {column} is null in every fit row: not modeled, synthetic {column} is NULL")
        elif distinct == 1 and values.size == len(frame):
            plan.fixed[column] = _plain(values.iloc[0])
            plan.warnings.append(
                f"feature {column} is constant ({values.iloc[0]!r}) in the fit rows: not modeled, kept constant"
            )
        elif column in spec.categorical and distinct > limit:
            shares = frame[column].value_counts(normalize=True, dropna=False)
            plan.marginal[column] = {
                "values": [None if pd.isna(v) else _plain(v) for v in shares.index],
                "p": (shares / shares.sum()).tolist(),
            }
            plan.warnings.append(
                f"feature {column} is high-cardinality text ({distinct} distinct values > "
                f"synthetic.max_categories {limit}): not modeled, drawn from its real frequencies"
            )
        else:
            plan.modeled.append(column)
    return plan


def build_metadata(frame: pd.DataFrame, spec: DatasetSpec) -> Any:
    """SDV metadata detected from the fit frame (modeled columns and `_label`), corrected by the spec.

    No primary key (the id column never reaches the synthesizer); the label and the spec's
    categorical features are categorical; a numeric feature SDV took for an id, free text or a
    datetime becomes numerical; `synthetic.metadata` overrides any column last.
    """
    from sdv.metadata import Metadata

    metadata = Metadata.detect_from_dataframes({TABLE: frame})
    if metadata.tables[TABLE].primary_key is not None:
        metadata.remove_primary_key(TABLE)
    columns = metadata.tables[TABLE].columns
    for column in frame.columns:
        if column in spec.categorical or column == LABEL:
            metadata.update_column(column, TABLE, sdtype="categorical")
        elif column in spec.numeric and columns[column]["sdtype"] not in ALLOWED_SDTYPES:
            metadata.update_column(column, TABLE, sdtype="numerical")
    for column, override in spec.synthetic.metadata.items():
        if column not in spec.feature_columns:
            raise ValueError(
                f"synthetic.metadata.{column}: not a feature of the spec ({', '.join(spec.feature_columns)})"
            )
        if column not in frame.columns:
            continue  # not modeled (null, constant or high-cardinality): nothing to describe
        kwargs = {"sdtype": override} if isinstance(override, str) else dict(override)
        try:
            metadata.update_column(column, TABLE, **kwargs)
        except Exception as exc:  # SDV raises its own InvalidMetadataError
            raise ValueError(f"synthetic.metadata.{column} = {override!r} is not valid SDV metadata: {exc}") from exc
    metadata.validate()
    return metadata
