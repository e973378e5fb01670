"""A Great Expectations suite built from the dataset spec, and row-level outcomes.

The suite checks what the spec promises: columns present, ids present and unique,
timestamps present, numeric ranges, allowed categories, no nulls where none are allowed.
Each failing row is traced back (by position) so ingest can quarantine it with a reason.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import pandas as pd

from mlinfra_assets.spec import DatasetSpec

ROW = "_row"


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int


@dataclass
class Validation:
    """The suite's verdict on one batch of rows."""

    rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    row_reasons: dict[int, list[str]] = field(default_factory=dict)

    @property
    def table_failures(self) -> list[str]:
        """Failed expectations that no single row explains (e.g. a missing column)."""
        return [
            f"{o.expectation}({o.column})"
            for o in self.outcomes
            if not o.success and o.unexpected_count == 0
        ]

    def markdown(self) -> str:
        lines = ["| expectation | column | passed | unexpected rows |", "|---|---|---|---|"]
        for o in self.outcomes:
            lines.append(f"| {o.expectation} | {o.column} | {o.success} | {o.unexpected_count} |")
        return "\n".join(lines)


def build_suite(spec: DatasetSpec):  # -> gx.ExpectationSuite
    """The expectation suite the spec implies."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    ex = gx.expectations
    suite = gx.ExpectationSuite(name=f"{spec.name}_raw")
    for col in spec.source_columns:
        suite.add_expectation(ex.ExpectColumnToExist(column=col))
    for col in (c for c in (spec.id_column, spec.timestamp_column) if c):
        suite.add_expectation(ex.ExpectColumnValuesToNotBeNull(column=col))
    suite.add_expectation(ex.ExpectColumnValuesToBeUnique(column=spec.id_column))
    for col, rule in spec.features.numeric.items():
        if not rule.nullable:
            suite.add_expectation(ex.ExpectColumnValuesToNotBeNull(column=col))
        # finite bounds on every numeric column: +-inf never passes
        low = rule.min if rule.min is not None else -sys.float_info.max
        high = rule.max if rule.max is not None else sys.float_info.max
        suite.add_expectation(ex.ExpectColumnValuesToBeBetween(column=col, min_value=low, max_value=high))
    for col, rule in spec.features.categorical.items():
        if not rule.nullable:
            suite.add_expectation(ex.ExpectColumnValuesToNotBeNull(column=col))
        if rule.values:
            suite.add_expectation(ex.ExpectColumnValuesToBeInSet(column=col, value_set=rule.values))
    return suite


def validate(spec: DatasetSpec, df: pd.DataFrame) -> Validation:
    """Run the spec's suite on `df` and trace each unexpected value to its row position."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    frame = df.reset_index(drop=True).assign(**{ROW: range(len(df))})
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    try:
        batch = (
            context.data_sources.add_pandas("rows")
            .add_dataframe_asset("batch")
            .add_batch_definition_whole_dataframe("all")
            .get_batch(batch_parameters={"dataframe": frame})
        )
        result = batch.validate(
            build_suite(spec),
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]},
        )
    finally:
        # GX keeps the last context it made (its project manager), and with it this data source
        # and its batch: the window's frame stayed alive for the rest of the process (107 MiB of
        # a 1M-row `mlinfra run`, to its end)
        context.data_sources.delete("rows")
    out = Validation(rows=len(frame))
    for r in result.results:
        cfg = r.expectation_config
        column = cfg.kwargs.get("column")
        found = r.result or {}
        indexes = found.get("unexpected_index_list") or []
        out.outcomes.append(
            ExpectationOutcome(cfg.type, column, bool(r.success), int(found.get("unexpected_count") or 0))
        )
        for item in indexes:
            pos = int(item[ROW]) if isinstance(item, dict) else int(item)
            out.row_reasons.setdefault(pos, []).append(f"{cfg.type}({column})")
    return out
