"""Bad LFs fail naming the LF and its first offending row; a failed run keeps the previous matrix."""

import numpy as np
import pytest
from snorkel.labeling import labeling_function

from mlinfra_assets import keys
from mlinfra_assets.labeling.forms import LF, sql_labeling_function, vectorized_labeling_function
from mlinfra_assets.labeling.lfs import LabelingFunctionError, LFSet, load_lfs
from mlinfra_assets.labeling.matrix import build_label_matrix
from mlinfra_assets.runner import run_assets
from tests.labeling.conftest import labeling_spec, sql

SPEC = labeling_spec()


def first_row(resources, condition: str):
    """The smallest txn_id of the raw rows where `condition` holds."""
    return sql(resources, f"SELECT min(txn_id) FROM raw.transactions WHERE {condition}")[0][0]


def build(resources, *lfs: LF, form: str = "fastest"):
    return build_label_matrix(resources["warehouse"], SPEC, LFSet("test_lfs", list(lfs), None), form=form)


def test_sql_lf_errors_name_the_lf_and_first_row(resources):
    with pytest.raises(LabelingFunctionError, match="'typo' does not compile on duckdb.*amount_vs_avgg"):
        build(resources, LF("typo", sql=sql_labeling_function("typo", "CASE WHEN amount_vs_avgg > 1 THEN 1 END")))
    with pytest.raises(LabelingFunctionError, match="'unclosed' does not compile"):
        build(resources, LF("unclosed", sql=sql_labeling_function("unclosed", "CASE WHEN amount > 1 THEN 1")))
    with pytest.raises(LabelingFunctionError, match="'text' returns VARCHAR"):
        build(resources, LF("text", sql=sql_labeling_function("text", "channel")))
    expected = first_row(resources, "txn_count_1h >= 2")
    ok = LF("ok", sql=sql_labeling_function("ok", "CASE WHEN amount > 100 THEN 1 END"))
    bad = LF("two", sql=sql_labeling_function("two", "CASE WHEN txn_count_1h >= 2 THEN 2 END"))
    with pytest.raises(LabelingFunctionError, match=rf"'two' voted 2 on row_id {expected} \(its first offending row\)"):
        build(resources, ok, bad)
    neg = LF("neg", sql=sql_labeling_function("neg", "CASE WHEN txn_count_1h >= 2 THEN -2 END"))
    with pytest.raises(LabelingFunctionError, match=rf"'neg' voted -2 on row_id {expected}"):
        build(resources, neg)
    # beyond SMALLINT the cast fails before any range check: still named, with its row
    huge = LF("huge", sql=sql_labeling_function("huge", "CASE WHEN txn_count_1h >= 2 THEN 70000 END"))
    with pytest.raises(LabelingFunctionError, match=rf"'huge' voted 70000 on row_id {expected}"):
        build(resources, ok, huge)
    # next to Python LFs (their votes joined in SQL) the SQL vote is checked all the same
    vec = LF("vec", vectorized=vectorized_labeling_function("vec")(lambda df: np.full(len(df), -1)))
    with pytest.raises(LabelingFunctionError, match=rf"'two' voted 2 on row_id {expected}"):
        build(resources, vec, bad)


def test_range_check_scans_when_statistics_do_not_decide(resources, monkeypatch):
    from mlinfra_assets.labeling import matrix

    ok = LF("ok", sql=sql_labeling_function("ok", "CASE WHEN amount > 100 THEN 1 WHEN amount < 5 THEN 0 END"))
    build(resources, ok)
    expected = sql(resources, "SELECT * FROM labeling.label_matrix ORDER BY row_id")
    monkeypatch.setattr(matrix, "_within", lambda stats, n_classes: False)  # as if the bounds were loose
    build(resources, ok)
    assert sql(resources, "SELECT * FROM labeling.label_matrix ORDER BY row_id") == expected
    bad = LF("two", sql=sql_labeling_function("two", "CASE WHEN txn_count_1h >= 2 THEN 2 END"))
    with pytest.raises(LabelingFunctionError, match=rf"'two' voted 2 on row_id {first_row(resources, 'txn_count_1h >= 2')}"):
        build(resources, ok, bad)
    assert sql(resources, "SELECT * FROM labeling.label_matrix ORDER BY row_id") == expected


def test_python_lf_errors_name_the_lf_and_first_row(resources):
    expected = first_row(resources, "amount_vs_avg > 5")

    @labeling_function()
    def raises(x) -> int:  # noqa: ANN001
        return 1 // 0 if x.amount_vs_avg > 5 else -1

    @labeling_function()
    def minus_two(x) -> int:  # noqa: ANN001 - Snorkel's applier alone would drop this vote silently
        return -2 if x.amount_vs_avg > 5 else -1

    @vectorized_labeling_function()
    def vec_raises(df):  # noqa: ANN001, ANN202
        if (df.amount_vs_avg > 5).any():
            raise ValueError("no big amounts")
        return np.full(len(df), -1)

    @vectorized_labeling_function()
    def vec_range(df):  # noqa: ANN001, ANN202
        return np.where(df.amount_vs_avg > 5, 7, -1)

    @vectorized_labeling_function()
    def vec_short(df):  # noqa: ANN001, ANN202
        return np.full(len(df) - 1, -1)

    cases = {
        LF("raises", rowwise=raises): rf"'raises' raised ZeroDivisionError.*row_id {expected}",
        LF("minus_two", rowwise=minus_two): rf"'minus_two' returned -2 on row_id {expected}",
        LF("vec_raises", vectorized=vec_raises): rf"'vec_raises' raised ValueError.*row_id {expected}",
        LF("vec_range", vectorized=vec_range): rf"'vec_range' returned 7 on row_id {expected}",
        LF("vec_short", vectorized=vec_short): r"'vec_short' returned \(\d+,\) votes for a chunk of \d+ rows",
    }
    for lf, message in cases.items():
        with pytest.raises(LabelingFunctionError, match=message):
            build(resources, lf)


def test_failed_run_keeps_the_previous_label_matrix(resources):
    run_assets(SPEC, resources, selection=[keys.LABEL_MATRIX])
    before = sql(resources, "SELECT * FROM labeling.label_matrix ORDER BY row_id")
    broken = labeling_spec(labeling_functions="tests.labeling.lf_modules_broken")
    expected = first_row(resources, "amount_vs_avg > 5")
    # the code location refuses it when it loads (check_lfs on a sample of the source) ...
    with pytest.raises(LabelingFunctionError, match="'fragile' raised KeyError"):
        run_assets(broken, resources, selection=[keys.LABEL_MATRIX], raise_on_error=False)
    # ... and an LF that fails only beyond the sample fails the matrix build, which keeps the old one
    with pytest.raises(LabelingFunctionError, match=rf"'fragile' raised KeyError.*row_id {expected} \(its first offending row\)"):
        build(resources, *load_lfs(broken).lfs)
    assert sql(resources, "SELECT * FROM labeling.label_matrix ORDER BY row_id") == before
    # an out-of-range SQL vote is found inside the writing transaction: the old matrix stays too
    with pytest.raises(LabelingFunctionError):
        build(resources, LF("two", sql=sql_labeling_function("two", "CASE WHEN amount > 0 THEN 2 END")))
    assert sql(resources, "SELECT * FROM labeling.label_matrix ORDER BY row_id") == before
    assert sql(resources, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_mlinfra%'") == [(0,)]
