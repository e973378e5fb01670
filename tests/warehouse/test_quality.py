"""The Great Expectations suite's run on a window: its verdict per row, and nothing of the window
left alive after it (GX keeps the last context it made, which held the window's frame: 107 MiB of
a 1M-row run, to the run's end)."""

import gc

import numpy as np
import pandas as pd

from mlinfra_assets.warehouse import quality
from tests.conftest import small_spec


def _window_frames() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, pd.DataFrame) and quality.ROW in o.columns)


def test_the_verdict_names_the_rows_and_the_window_is_not_kept():
    spec = small_spec()
    rows = 500
    df = pd.DataFrame({c: np.zeros(rows) for c in spec.source_columns})
    df[spec.id_column] = np.arange(rows)
    for column, rule in spec.features.categorical.items():
        if rule.values:
            df[column] = rule.values[0]
    df.loc[7, spec.id_column] = 3  # a repeated id: both rows named
    amount = next(iter(spec.features.numeric))
    df.loc[11, amount] = np.inf  # outside every finite bound
    before = _window_frames()
    for _ in range(2):  # a second window replaces the first in GX's context: still nothing kept
        found = quality.validate(spec, df)
        assert found.rows == rows
        assert found.row_reasons == {3: [f"expect_column_values_to_be_unique({spec.id_column})"],
                                     7: [f"expect_column_values_to_be_unique({spec.id_column})"],
                                     11: [f"expect_column_values_to_be_between({amount})"]}
        assert _window_frames() == before
