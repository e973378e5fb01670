"""`column OP value` as an SDV programmable constraint (its own module: it imports SDV, and a
saved synthesizer pickles a reference to this class)."""

from typing import Any

import pandas as pd
from sdv.cag import SingleTableProgrammableConstraint

from mlinfra_assets.synthetic.constraints import OPS


class ScalarBound(SingleTableProgrammableConstraint):
    """`column OP value` enforced by SDV's reject sampling (the data passes through unchanged)."""

    def __init__(self, column_name: str, op: str, value: float) -> None:
        self.column_name, self.op, self.value = column_name, op, value

    def validate_input_data(self, data: pd.DataFrame) -> None:
        broken = int((~self.is_valid(data)).sum())
        if broken:
            raise ValueError(
                f"synthetic.constraints '{self.column_name} {self.op} {self.value:g}': {broken} fit "
                "rows break it: fix the data or the constraint"
            )

    def get_updated_metadata(self, metadata: Any) -> Any:
        return metadata

    def transform(self, data: pd.DataFrame) -> pd.DataFrame:
        return data

    def reverse_transform(self, transformed_data: pd.DataFrame) -> pd.DataFrame:
        return transformed_data

    def is_valid(self, synthetic_data: pd.DataFrame) -> pd.Series:
        values = synthetic_data[self.column_name]
        return OPS[self.op](values, self.value) | values.isna()
