"""The SQL lf_summary gives the same numbers as Snorkel's LFAnalysis.lf_summary."""

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mlinfra_assets.labeling.analysis import lf_summary

CLASSES = ["a", "b", "c"]


def sql_summary(L: np.ndarray, gold: np.ndarray | None, classes: list[str] = CLASSES) -> pd.DataFrame:
    names = [f"lf{j}" for j in range(L.shape[1])]
    con = duckdb.connect()
    matrix = pd.DataFrame(L.astype(np.int16), columns=names)
    matrix.insert(0, "row_id", np.arange(len(L)))
    con.register("matrix", matrix)
    con.execute("CREATE SCHEMA labeling; CREATE TABLE labeling.label_matrix AS SELECT * FROM matrix")
    if gold is not None:
        con.register("g", pd.DataFrame({"row_id": np.arange(len(L)), "label": gold})[gold != -1])
        con.execute("CREATE TABLE gold AS SELECT * FROM g")
    return lf_summary(con, names, classes, "SELECT row_id, label FROM gold" if gold is not None else None)


def assert_same(ours: pd.DataFrame, L: np.ndarray, gold: np.ndarray | None, classes: list[str] = CLASSES) -> None:
    from snorkel.labeling import LFAnalysis

    theirs = LFAnalysis(L).lf_summary()
    assert ours["polarity"].tolist() == [",".join(classes[k] for k in p) for p in theirs["Polarity"]]
    for ours_col, col in (("coverage", "Coverage"), ("overlaps", "Overlaps"), ("conflicts", "Conflicts")):
        np.testing.assert_allclose(ours[ours_col].to_numpy(dtype=float), theirs[col].to_numpy(dtype=float), rtol=1e-12)
    if gold is None:
        assert ours["emp_acc"].isna().all()
        return
    has = gold != -1  # Snorkel is given the gold rows only; ours joins them
    if not has.any():
        assert ours["correct"].isna().all() and ours["emp_acc"].isna().all()
        return
    judged = LFAnalysis(L[has]).lf_summary(Y=gold[has])
    votes = (L[has] != -1).sum(axis=0) > 0
    assert ours["correct"].to_numpy(dtype=float, na_value=-1).tolist() == np.where(votes, judged["Correct"], -1).tolist()
    assert ours["incorrect"].to_numpy(dtype=float, na_value=-1).tolist() == np.where(votes, judged["Incorrect"], -1).tolist()
    np.testing.assert_allclose(
        ours["emp_acc"].to_numpy(dtype=float, na_value=np.nan)[votes], judged["Emp. Acc."].to_numpy(dtype=float)[votes]
    )


@settings(max_examples=30, deadline=None)
@given(
    L=st.integers(1, 6).flatmap(lambda m: arrays(np.int64, st.tuples(st.integers(1, 60), st.just(m)), elements=st.integers(-1, 2))),
    data=st.data(),
)
def test_sql_summary_equals_lfanalysis_on_random_matrices(L, data):
    gold = data.draw(st.none() | arrays(np.int64, len(L), elements=st.integers(-1, 2)))
    assert_same(sql_summary(L, gold), L, gold)


def test_sql_summary_equals_lfanalysis_on_a_demo_sample(tmp_path):
    from mlinfra_assets.demo import generator as demo
    from mlinfra_assets.labeling.lfs import load_lfs
    from mlinfra_assets.labeling.matrix import build_label_matrix
    from mlinfra_assets.resources import Warehouse
    from tests.conftest import small_spec

    spec = small_spec()
    tables = demo.generate(spec, 5000)
    lfs = load_lfs(spec)
    warehouse = Warehouse(path=str(tmp_path / "w.duckdb"))
    with warehouse.connect() as con:
        con.register("t", tables.transactions)
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.transactions AS SELECT * FROM t ORDER BY txn_id")
    build_label_matrix(warehouse, spec, lfs)
    L = warehouse.query_df("SELECT * FROM labeling.label_matrix ORDER BY row_id")[lfs.names].to_numpy(np.int64)
    sample = np.random.default_rng(3).random(len(L)) < 0.3  # gold on a 30% sample
    gold = np.where(sample, tables.labels.sort_values("txn_id")["label"].to_numpy(), -1)
    ours = sql_summary(L, gold, spec.classes)
    assert_same(ours, L, gold, spec.classes)
    assert (L != -1).any(axis=0).all() and ours["correct"].notna().all() and (ours["overlaps"] > 0).any()


def test_empty_matrix_is_an_error():
    with pytest.raises(ValueError, match="has no rows"):
        sql_summary(np.zeros((0, 2), dtype=np.int64), None)
