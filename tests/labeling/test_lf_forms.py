"""The demo LFs' SQL, vectorized and row-wise forms give Snorkel's PandasLFApplier label matrix."""

import math
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlinfra_assets.labeling.forms import lf_frame
from mlinfra_assets.labeling.lfs import LabelingFunctionError, load_lfs
from mlinfra_assets.labeling.matrix import build_label_matrix
from mlinfra_assets.resources import Warehouse
from tests.conftest import small_spec

SPEC = small_spec()
LFS = load_lfs(SPEC)
FLOATS = [c for c in SPEC.numeric if c in ("amount", "amount_vs_avg", "distance_km")]
INTS = [c for c in SPEC.numeric if c not in FLOATS]
THRESHOLDS = [0, 1, 1.5, 2, 2.5, 3, 4, 5, 8, 10, 20, 23, 1095, 1096]

floats = st.one_of(
    st.none(),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324]),
    st.sampled_from(THRESHOLDS).flatmap(lambda t: st.sampled_from([t, math.nextafter(t, -math.inf), math.nextafter(t, math.inf)])),
    st.floats(allow_nan=True, allow_infinity=True),
)
ints = st.one_of(
    st.none(),
    st.sampled_from([*map(int, THRESHOLDS), -1, 2**62, -(2**62), 2**63 - 1, -(2**63)]),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-3, 30),
)
strings = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "online", "pos", "atm", "ONLINE", "online ", "grocery", "pharmacy", "fuel",
                     "restaurant", "travel", "gaming", "x'; --"]),
    st.text(max_size=6),
)


def arrow_table(rows: list[dict]) -> pa.Table:
    """The rows with the raw table's types (NaN stays NaN, None is NULL)."""
    columns = {
        "txn_id": pa.array(range(1, len(rows) + 1), pa.int64()),
        "ts": pa.array([datetime(2026, 1, 1)] * len(rows), pa.timestamp("us")),
    }
    for c in FLOATS:
        columns[c] = pa.array([r[c] for r in rows], pa.float64(), from_pandas=False)
    for c in INTS:
        columns[c] = pa.array([r[c] for r in rows], pa.int64())
    for c in SPEC.categorical:
        columns[c] = pa.array([r[c] for r in rows], pa.string())
    return pa.table(columns)


def label_matrices(table: pa.Table, forms: list[str]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The label matrix of each form, and the frame Python LFs see, ordered by row_id."""
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Warehouse(path=str(Path(tmp) / "w.duckdb"))
        with warehouse.connect() as con:
            con.register("incoming", table)
            con.execute("CREATE SCHEMA raw; CREATE TABLE raw.transactions AS SELECT * FROM incoming")
        out = {}
        for form in forms:
            build_label_matrix(warehouse, SPEC, LFS, form=form, table=f"labeling.m_{form}")
            out[form] = warehouse.query_df(f"SELECT * FROM labeling.m_{form} ORDER BY row_id")
        cols = ", ".join([SPEC.timestamp_column, *SPEC.feature_columns])
        frame = warehouse.query_df(f"SELECT txn_id AS row_id, {cols} FROM raw.transactions ORDER BY row_id")
    return out, frame


def snorkel_reference(frame: pd.DataFrame) -> np.ndarray:
    from snorkel.labeling import PandasLFApplier

    return PandasLFApplier([lf.rowwise for lf in LFS.lfs]).apply(lf_frame(frame), progress_bar=False)


row = st.fixed_dictionaries(
    {c: floats for c in FLOATS} | {c: ints for c in INTS} | {c: strings for c in SPEC.categorical}
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=40))
def test_three_forms_equal_snorkel_on_random_tables(rows):
    matrices, frame = label_matrices(arrow_table(rows), ["sql", "vectorized", "rowwise"])
    expected = snorkel_reference(frame)
    for form, matrix in matrices.items():
        assert list(matrix.columns) == ["row_id", *LFS.names]
        assert (matrix["row_id"].to_numpy() == frame["row_id"].to_numpy()).all()
        np.testing.assert_array_equal(matrix[LFS.names].to_numpy(), expected, err_msg=form)


def test_demo_lfs_have_all_three_forms_and_vote_on_demo_rows():
    from mlinfra_assets.demo import generator as demo

    tables = demo.generate(SPEC, 4000)
    matrices, frame = label_matrices(pa.Table.from_pandas(tables.transactions, preserve_index=False), ["sql", "vectorized", "rowwise"])
    assert all(lf.forms == ["sql", "vectorized", "rowwise"] for lf in LFS.lfs)
    expected = snorkel_reference(frame)
    assert (expected != -1).any(axis=0).all()  # every LF votes somewhere: the check is not vacuous
    for matrix in matrices.values():
        np.testing.assert_array_equal(matrix[LFS.names].to_numpy(), expected)


def test_nan_is_missing_in_every_form():
    nan_row = {c: math.nan for c in FLOATS} | {c: 1 for c in INTS} | {c: "online" for c in SPEC.categorical}
    matrices, _ = label_matrices(arrow_table([nan_row]), ["sql", "rowwise"])
    # DuckDB orders NaN above every number: read raw, `amount_vs_avg >= 10` would vote
    assert (matrices["sql"]["amount_spike"] == -1).all() and (matrices["rowwise"]["amount_spike"] == -1).all()


def test_a_form_the_lf_lacks_is_named():
    from mlinfra_assets.labeling.forms import LF, choose_forms

    with pytest.raises(ValueError, match=r"\['only_sql'\] are not written in it"):
        choose_forms([LF("only_sql", sql=object())], "rowwise")
    with pytest.raises(LabelingFunctionError, match="two sql forms"):
        load_lfs(small_spec(labeling_functions="tests.labeling.lf_modules_twice"))
