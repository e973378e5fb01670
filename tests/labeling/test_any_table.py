"""Labeling on tables the demo never saw: wine (3 classes), iris (class names), digits (10 classes).

LF module as a file beside the spec, check_lfs, class names as votes and labels, the label
model chosen against majority vote on gold, multi-class LF summary, active-learning seeds.
"""

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from mlinfra_assets import keys
from mlinfra_assets.holdout import holdout_predicate
from mlinfra_assets.labeling import active, evaluation, label_model
from mlinfra_assets.labeling.annotations import AnnotationFileError, check_rows
from mlinfra_assets.labeling.assets.human import build_annotation_queue
from mlinfra_assets.labeling.assets.weak import build_label_matrix_asset, build_lf_summary
from mlinfra_assets.labeling.assets.weak_labels import build_weak_labels
from mlinfra_assets.labeling.lfs import LabelingFunctionError, check_lfs, load_lfs
from mlinfra_assets.labeling.queries import load_sql, sql_identifiers
from mlinfra_assets.resources import default_resources
from mlinfra_assets.stage import SHOWN
from mlinfra_assets.training.metrics import metric_score
from tests.labeling.any_table import WINE_LFS, land, table_spec, wine_frame

WINE_CLASSES = ["class_0", "class_1", "class_2"]


def _materialize(spec, resources, extra=()):  # noqa: ANN001, ANN202
    assets = [build_label_matrix_asset(spec), build_weak_labels(spec), build_lf_summary(spec), *extra]
    return dg.materialize(assets, resources=resources, selection=[a.key for a in assets])


def _meta(result, key) -> dict:  # noqa: ANN001
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def _frame(resources, query: str) -> pd.DataFrame:  # noqa: ANN001
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    try:
        return con.execute(query).df()
    finally:
        con.close()


@pytest.fixture
def wine(tmp_path):
    frame = wine_frame()
    spec = table_spec(tmp_path, frame, WINE_CLASSES, WINE_LFS)
    resources = default_resources(tmp_path / "data")
    (tmp_path / "data").mkdir()
    land(resources["warehouse"].path, spec, frame)
    return spec, resources, frame


# ---- the LF module --------------------------------------------------------------------------


def test_an_lf_file_beside_the_spec_loads_and_its_class_names_pass_the_check(wine):
    spec, _, frame = wine
    lf_set = load_lfs(spec)
    assert lf_set.names == ["rich", "light", "pale_hue", "few_flavanoids", "weak_alcohol", "dark"]
    assert lf_set.module.endswith("lfs.py")
    check_lfs(spec, frame)  # names, indexes and ABSTAIN are all valid votes


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("@vectorized_labeling_function()\ndef odd(df):\n    return np.where(df.hue < 0.7, 'class_9', None)\n",
         r"'odd' returned 'class_9' on row_id \d+"),
        ("@labeling_function()\ndef odd(x):\n    return 3 if x.hue < 0.7 else ABSTAIN\n", r"'odd' returned 3 on row_id"),
        ("@labeling_function()\ndef odd(x):\n    return 'Class_1'\n", r"'odd' returned 'Class_1'.*class name \(str\) of \['class_0'"),
        ("@labeling_function()\ndef odd(x):\n    return 1 / 0\n", r"'odd' raised ZeroDivisionError"),
        ("odd = sql_labeling_function('odd', 'CASE WHEN hue < 0.7 THEN 7 END')\n", r"'odd' voted 7 on row_id"),
        ("odd = sql_labeling_function('odd', \"'class_1'\")\n", r"'odd' returns VARCHAR"),
    ],
)
def test_check_lfs_names_the_lf_and_the_bad_value(tmp_path, body, named):
    frame = wine_frame()
    spec = table_spec(tmp_path, frame, WINE_CLASSES, WINE_LFS + "\n\n" + body)
    with pytest.raises(LabelingFunctionError, match=named):
        check_lfs(spec, frame)


def test_a_missing_lf_file_is_named_with_the_setting(tmp_path):
    frame = wine_frame()
    spec = table_spec(tmp_path, frame, WINE_CLASSES, WINE_LFS)
    spec.labeling_functions = "rules/missing.py"
    with pytest.raises(LabelingFunctionError, match=r"labeling_functions file .*rules/missing.py.*does not exist"):
        load_lfs(spec)


# ---- the label model is chosen, not assumed ---------------------------------------------------


def test_the_better_of_label_model_and_majority_vote_writes_the_weak_labels(wine):
    spec, resources, frame = wine
    result = _materialize(spec, resources)
    meta = _meta(result, keys.WEAK_LABELS)
    metric = spec.metric
    assert metric == "macro_f1"
    lm, mv = meta["label_model_macro_f1"], meta["majority_vote_macro_f1"]
    assert isinstance(lm, float) and isinstance(mv, float)
    assert meta["label_model_choice"] == ("majority_vote" if mv > lm else "label_model")
    assert meta["label_model_choice_gold"] == "gold" and f"{max(lm, mv):.4f}" in meta["label_model_reason"]
    prefix = "mv-" if meta["label_model_choice"] == "majority_vote" else "lm-"
    assert meta["label_model_version"].startswith(prefix)

    # the written weak labels score exactly the chosen method's figure on the gold rows outside
    # the evaluation holdout (the choice never sees the holdout)
    weak = _frame(resources, "SELECT w.label, g.label AS gold FROM labeling.weak_labels w "
                             "JOIN raw.gold g ON g.row_id = CAST(w.row_id AS VARCHAR) "
                             f"WHERE NOT {holdout_predicate(spec, 'g.row_id')}")
    holdout = _frame(resources, f"SELECT count(*) AS n FROM raw.gold g WHERE {holdout_predicate(spec, 'g.row_id')}")
    assert holdout["n"][0] > 0
    assert len(weak) == meta["label_model_choice_rows"] < meta["dagster/row_count"]
    chosen = metric_score(metric, weak["gold"].to_numpy(), weak["label"].to_numpy(), 3, spec.positive_index)
    assert chosen == pytest.approx(max(lm, mv), rel=SHOWN)
    # the weak labels beat always answering the commonest class: the LFs carry signal
    majority = np.full(len(weak), np.bincount(weak["gold"]).argmax())
    assert chosen > metric_score(metric, weak["gold"].to_numpy(), majority, 3, spec.positive_index) + 0.2
    probs = _frame(resources, "SELECT * FROM labeling.weak_labels")
    assert list(probs.columns[1:4]) == spec.prob_columns


def test_lf_summary_is_right_for_three_classes(wine):
    from mlinfra_assets.holdout import gold_from
    from mlinfra_assets.labeling import analysis

    spec, resources, frame = wine
    result = _materialize(spec, resources)
    names = load_lfs(spec).names
    matrix = _frame(resources, "SELECT * FROM labeling.label_matrix ORDER BY row_id")
    gold = frame.set_index("id")["target"].map(WINE_CLASSES.index).loc[matrix["row_id"]].to_numpy()
    V = matrix[names].to_numpy()
    lo, hi = np.where(V == -1, 99, V).min(axis=1), V.max(axis=1)
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    try:
        table = analysis.lf_summary(con, names, spec.classes, gold_from(spec)).set_index("lf")
    finally:
        con.close()
    assert table.loc["few_flavanoids", "polarity"] == "class_0,class_2"
    assert table.loc["weak_alcohol", "polarity"] == "class_1"
    for j, name in enumerate(names):
        on = V[:, j] != -1
        assert table.loc[name, "coverage"] == pytest.approx(on.mean())
        assert table.loc[name, "overlaps"] == pytest.approx((on & ((V != -1).sum(axis=1) > 1)).mean())
        assert table.loc[name, "conflicts"] == pytest.approx((on & (hi > lo)).mean())
        assert table.loc[name, "correct"] == (V[on, j] == gold[on]).sum()
        assert table.loc[name, "emp_acc"] == pytest.approx((V[on, j] == gold[on]).mean())
    assert (table["conflicts"] > 0).any() and (table["emp_acc"] < 1).any()  # not vacuous
    meta = _meta(result, keys.LF_SUMMARY)
    assert meta["gold_rows"] == 0 and "few_flavanoids" in meta["gold_accuracy"]


def test_without_gold_the_label_model_is_used_and_the_reason_says_so(tmp_path):
    frame = wine_frame()
    spec = table_spec(tmp_path, frame, WINE_CLASSES, WINE_LFS, gold=False,
                      active_learning={"batch_size": 500, "seed_confidence": 0.9})
    resources = default_resources(tmp_path / "data")
    (tmp_path / "data").mkdir()
    land(resources["warehouse"].path, spec, frame)
    result = _materialize(spec, resources, extra=[build_annotation_queue(spec)])
    meta = _meta(result, keys.WEAK_LABELS)
    assert meta["label_model_choice"] == "label_model" and meta["label_model_version"].startswith("lm-")
    assert "no gold rows" in meta["label_model_reason"] and meta["label_model_choice_gold"] == "none"
    assert isinstance(meta["label_model_macro_f1"], str)  # a figure that cannot be computed says why
    # without gold the holdout is made of annotated rows: the queue offers holdout rows too
    queue = _meta(result, keys.ANNOTATION_QUEUE)
    assert queue["batch_rows"] == len(frame)
    assert "learning_curves" not in queue  # the demo's curves stay with the demo
    assert queue["strategy"] == "uncertainty" and queue["seeded_classes"] >= 2


def test_choose_prefers_majority_vote_only_when_strictly_better():
    def table(lm: float, mv: float) -> pd.DataFrame:
        return pd.DataFrame({"method": ["label_model", "majority_vote"], "rows": [50, 50], "f1": [lm, mv]})

    assert evaluation.choose(table(0.453, 0.487), "f1")[0] == "majority_vote"
    assert "0.4870" in evaluation.choose(table(0.453, 0.487), "f1")[1]
    assert evaluation.choose(table(0.5, 0.5), "f1")[0] == "label_model"
    assert evaluation.choose(table(0.6, 0.5), "f1")[0] == "label_model"
    assert evaluation.choose(table(float("nan"), 0.5), "f1")[0] == "label_model"


def test_majority_vote_breaks_ties_by_the_prior_and_never_abstains():
    names = ["a", "b", "c"]
    patterns = pd.DataFrame({"a": [0, 1, -1, -1], "b": [2, 1, -1, 2], "c": [-1, 0, -1, -1], "n": [5, 3, 9, 4]})
    fit = label_model.majority_fit(patterns, names, ["x", "y", "z"], [0.2, 0.3, 0.5], "spec")
    by = fit.patterns.set_index(names)
    assert by.loc[(0, 2, -1), "label"] == 2  # tie 0 vs 2: z has the higher prior
    assert by.loc[(1, 1, 0), "label"] == 1 and by.loc[(1, 1, 0), "confidence"] == pytest.approx(2 / 3)
    assert by.loc[(-1, 2, -1), "label"] == 2
    assert fit.rows_without_votes == 9 and fit.voted_rows == 12 and fit.version.startswith("mv-")
    assert list(fit.patterns.columns[4:7]) == ["prob_x", "prob_y", "prob_z"]


# ---- labels by class name -------------------------------------------------------------------


def test_annotation_labels_by_name_or_index_and_unknown_classes_named():
    iris = ["setosa", "versicolor", "virginica"]
    rows = pd.DataFrame({"row_id": ["1", "2", "3"], "label": ["virginica", "0", "versicolor"], "annotator": "ann"})
    assert check_rows(rows, iris, "a.csv")["label"].tolist() == [2, 0, 1]
    bad = pd.DataFrame({"row_id": ["1"], "label": ["daisy"], "annotator": "ann"})
    with pytest.raises(AnnotationFileError, match=r"b.csv: class\(es\) \['daisy'\] unknown.*\['setosa', 'versicolor', 'virginica'\]"):
        check_rows(bad, iris, "b.csv")
    # numeric class names: a value is always a name ("1" is the class named 1, not index 1)
    numeric = ["1", "2", "3"]
    rows = pd.DataFrame({"row_id": ["1", "2"], "label": ["1", "3"], "annotator": "ann"})
    assert check_rows(rows, numeric, "c.csv")["label"].tolist() == [0, 2]
    with pytest.raises(AnnotationFileError, match=r"\['0'\] unknown.*always read as a name"):
        check_rows(pd.DataFrame({"row_id": ["1"], "label": ["0"], "annotator": "ann"}), numeric, "d.csv")
    # a class named like another's index: the name wins
    assert check_rows(pd.DataFrame({"row_id": ["1"], "label": ["x"], "annotator": "a"}), ["y", "x"], "e.csv")["label"].tolist() == [1]


# ---- active learning, 3 and 10 classes --------------------------------------------------------


def _digits_spec(tmp_path, classes_idx: list[int] | None = None):  # noqa: ANN001, ANN202
    from sklearn.datasets import load_digits

    data = load_digits(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace("-", "_"))
    frame.insert(0, "id", np.arange(len(frame)))
    frame["target"] = frame["target"].astype(str)
    spec = table_spec(tmp_path, frame, [str(k) for k in range(10)], WINE_LFS, gold=False)
    return spec, frame


@pytest.mark.parametrize("strategy", ["margin", "entropy", "uncertainty", "committee"])
def test_active_learning_seeds_the_classes_it_can_and_names_the_others(tmp_path, strategy):
    spec, frame = _digits_spec(tmp_path)
    labeled = frame[frame["target"].isin(["0", "1", "2", "3", "4", "5", "6"])].head(300)
    seed_rows = labeled.assign(row_id=labeled["id"], label=labeled["target"].astype(int))
    result = active.query_batch(spec, seed_rows, frame.assign(row_id=frame["id"]), 40, strategy, seed=7)
    assert result.unseeded == ["7", "8", "9"] and result.strategy == strategy and result.note is None
    assert len(result.batch) == 40 and result.batch["row_id"].is_unique
    assert result.seed_counts["0"] > 0 and result.seed_counts["9"] == 0


def test_three_class_margin_and_entropy_prefer_rows_between_classes(wine):
    spec, _, frame = wine
    seed = frame.groupby("target").head(10)
    seed_rows = seed.assign(row_id=seed["id"], label=seed["target"].map(WINE_CLASSES.index))
    pool = frame.assign(row_id=frame["id"])
    for strategy in ("margin", "entropy"):
        result = active.query_batch(spec, seed_rows, pool, 20, strategy, seed=7)
        assert not result.unseeded
        queued = pool.set_index("row_id").loc[result.batch["row_id"], spec.feature_columns]
        rest = pool.set_index("row_id").drop(index=result.batch["row_id"])[spec.feature_columns]
        from mlinfra_assets.labeling import strategies

        fitted = strategies.fit(spec, strategy, seed_rows[spec.feature_columns], seed_rows["label"], 7)
        top = np.sort(fitted.proba(queued), axis=1)[:, -1].mean()
        assert top < np.sort(fitted.proba(rest), axis=1)[:, -1].mean()


def test_with_one_seeded_class_the_batch_is_drawn_at_random_and_says_why(tmp_path):
    spec, frame = _digits_spec(tmp_path)
    only = frame[frame["target"] == "3"].head(20)
    result = active.query_batch(spec, only.assign(row_id=only["id"], label=3), frame.assign(row_id=frame["id"]),
                                25, "margin", seed=7)
    assert result.strategy == "random" and "at least two classes" in result.note
    assert len(result.unseeded) == 9 and len(result.batch) == 25
    empty = active.seed_set(frame.iloc[:0].assign(row_id=0, label=0), frame.iloc[:0].assign(row_id=0, label=0),
                            spec.classes, 7)
    assert empty.empty  # no seed at all never raises


def test_the_pool_leaves_the_holdout_out_only_with_gold(wine, tmp_path):
    spec, resources, frame = wine
    no_gold = table_spec(tmp_path, frame, WINE_CLASSES, WINE_LFS, gold=False)
    con = duckdb.connect(resources["warehouse"].path)
    try:
        ids = sql_identifiers(spec)
        con.execute(load_sql("annotations_table", **ids))
        con.execute(load_sql("queue_table", **ids))
        counts = {}
        for name, s in (("gold", spec), ("no_gold", no_gold)):
            counts[name] = con.execute(f"SELECT count(*) FROM ({load_sql('pool', **sql_identifiers(s))})",
                                       [0, 1_000_000]).fetchall()[0][0]
        holdout = con.execute(f"SELECT count(*) FROM {spec.raw_table} r WHERE {ids['holdout']}").fetchall()[0][0]
    finally:
        con.close()
    assert holdout > 0
    assert counts == {"gold": len(frame) - holdout, "no_gold": len(frame)}


def test_lf_votes_read_a_str_as_a_name_and_an_int_as_an_index():
    """With numeric class names the vote's type decides: "1" is the class named 1, 1 the index."""
    from snorkel.labeling import labeling_function

    from mlinfra_assets.labeling.apply import apply_rowwise, apply_vectorized
    from mlinfra_assets.labeling.forms import LF, vectorized_labeling_function

    frame = pd.DataFrame({"row_id": [1, 2, 3], "x": [0.5, 2.0, 9.0]})

    @labeling_function()
    def by_name(r):  # noqa: ANN001, ANN202
        return "1" if r.x < 1 else ("3" if r.x > 5 else None)

    @vectorized_labeling_function()
    def by_index(df):  # noqa: ANN001, ANN202
        return np.where(df.x > 1, 1, -1)

    classes = ["1", "2", "3"]
    assert apply_rowwise(frame, [LF("by_name", rowwise=by_name)], classes)[:, 0].tolist() == [0, -1, 2]
    assert apply_vectorized(frame, by_index, classes).tolist() == [-1, 1, 1]
    # iris's names as votes, from a vectorized LF
    iris = ["setosa", "versicolor", "virginica"]
    named = vectorized_labeling_function("petal")(lambda df: np.where(df.x > 5, "virginica", "setosa"))
    assert apply_vectorized(frame, named, iris).tolist() == [0, 0, 2]
    with pytest.raises(LabelingFunctionError, match=r"'petal' returned 'Virginica' on row_id 3"):
        apply_vectorized(frame, vectorized_labeling_function("petal")(
            lambda df: np.where(df.x > 5, "Virginica", None)), iris)
