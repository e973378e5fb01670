"""Shadow scoring: a challenger scores live partitions beside the champion, then is promoted or
kept out (by its predicted class shares, or its realized metric where labels arrived); the
champion is never unset."""

import copy

import duckdb
import numpy as np
import pandas as pd
import pytest
import torch

from mlinfra_assets import keys
from mlinfra_assets.monitoring import shadow
from mlinfra_assets.runner import run_assets
from mlinfra_assets.training import evaluation, registry
from tests.monitoring.conftest import build_warehouse, fixture_model, register_champion

DAYS = ["2026-01-20", "2026-01-21", "2026-01-22"]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    spec, resources = build_warehouse(tmp_path_factory.mktemp("shadow"), None)
    spec.serving.shadow_days = 2
    return spec, resources


def _decisions(resources: dict) -> pd.DataFrame:
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    try:
        return con.execute(f"SELECT * FROM {shadow.DECISIONS} ORDER BY decided_at").df()
    finally:
        con.close()


def _day(spec, resources, day: str) -> dict:  # noqa: ANN001
    """The daily job's scoring of `day`: the champion's predictions, then the shadow."""
    result = run_assets(spec, resources, selection=[keys.PREDICTIONS, keys.SHADOW], first=day, last=day)
    return {k: v.value for k, v in result.asset_materializations_for_node("monitoring__shadow")[-1].metadata.items()}


def _flags_everything(spec, model):  # noqa: ANN001, ANN202
    """The model with its positive logit raised by 50: it predicts the positive class on every row."""
    worse = copy.deepcopy(model)
    with torch.no_grad():
        worse.model.mlp[-1].bias[spec.positive_index] += 50.0
    return worse


def test_a_challenger_scores_its_shadow_days_then_becomes_champion_and_a_worse_one_is_kept_out(warehouse):
    spec, resources = warehouse
    tracker = resources["mlflow"]
    model = fixture_model(spec, resources["warehouse"].path)
    first = register_champion(resources, spec, model)
    # no shadow model: nothing scored, the metadata says why
    meta = _day(spec, resources, DAYS[0])
    assert meta["shadow_version"].startswith("none: no challenger")
    # a challenger that predicts like the champion enters its shadow period
    second = register_champion(resources, spec, copy.deepcopy(model))
    registry.set_alias(tracker, spec.name, registry.CHAMPION, first)
    registry.set_alias(tracker, spec.name, registry.SHADOW, second)
    meta = _day(spec, resources, DAYS[0])
    assert meta["decision"] == shadow.WAITING and "scored 1 of serving.shadow_days 2" in meta["reason"]
    assert meta["shadow_version"] == second and meta["champion_version"] == first
    assert meta["share_change"] == 0.0 and meta["champion_realized"] == "too few labels"
    assert registry.champion_version(tracker, spec.name) == first
    assert "shadow v" in meta["side_by_side"] and "predicted_shares" in meta
    meta = _day(spec, resources, DAYS[1])
    assert meta["decision"] == shadow.PROMOTED and meta["partitions_scored"] == 2, meta["reason"]
    assert registry.champion_version(tracker, spec.name) == second
    assert registry.alias_version(tracker, spec.name, registry.SHADOW) is None
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    shadowed = con.execute(f"SELECT count(*), count(DISTINCT _partition) FROM {shadow.TABLE} "
                           "WHERE _model_version = ?", [second]).fetchall()[0]
    scored = con.execute("SELECT count(*) FROM monitoring.predictions WHERE _partition IN (?, ?)", DAYS[:2]).fetchall()
    con.close()
    assert shadowed == (scored[0][0], 2) and meta["rows_compared"] == scored[0][0]
    # the next day is scored by the new champion, and no shadow is left to score
    meta = _day(spec, resources, DAYS[2])
    assert meta["shadow_version"].startswith("none")
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    assert con.execute("SELECT DISTINCT _model_version FROM monitoring.predictions WHERE _partition = ?",
                       [DAYS[2]]).fetchall() == [(second,)]
    con.close()

    # a challenger that flags every row is kept out after its shadow days; the champion stays
    third = register_champion(resources, spec, _flags_everything(spec, model))
    registry.set_alias(tracker, spec.name, registry.CHAMPION, second)
    registry.set_alias(tracker, spec.name, registry.SHADOW, third)
    _day(spec, resources, DAYS[1])
    meta = _day(spec, resources, DAYS[2])
    assert meta["decision"] == shadow.KEPT_OUT and "serving.shadow_share_margin" in meta["reason"], meta["reason"]
    assert meta["share_change"] > spec.serving.shadow_share_margin
    assert registry.champion_version(tracker, spec.name) == second
    assert registry.alias_version(tracker, spec.name, registry.SHADOW) is None
    decisions = _decisions(resources)
    assert list(decisions["shadow_version"]) == [second, third]
    assert list(decisions["decision"]) == [shadow.PROMOTED, shadow.KEPT_OUT]
    tags = registry._client(tracker).get_model_version(spec.name, third).tags
    assert tags["shadow_decision"].startswith(shadow.KEPT_OUT)


def _tables(con: duckdb.DuckDBPyConnection, champion: list[int], shadowed: list[int], labels: list[int],
            trained: list[int]) -> None:
    ids = [str(i) for i in range(len(champion))]
    con.execute("CREATE SCHEMA monitoring; CREATE SCHEMA labeling; CREATE SCHEMA training")
    for table, predicted, version in (("monitoring.predictions", champion, "1"), (shadow.TABLE, shadowed, "2")):
        frame = pd.DataFrame({"_row_id": ids, "_partition": "2026-01-20", "_prediction": predicted,
                              "_model_version": version})
        con.register("_frame", frame)
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM _frame")
    con.register("_gold", pd.DataFrame({"row_id": ids, "label": labels}))
    con.execute("CREATE TABLE labeling.gold_labels AS SELECT * FROM _gold")
    con.execute("CREATE TABLE training.training_set AS SELECT unnest(?) AS _row_id", [[str(i) for i in trained]])


def test_the_realized_metric_decides_where_labels_arrived(warehouse):
    """40 labeled rows, 10 of them training rows: 30 compared (the default
    thresholds.min_labeled_rows). The champion finds the positives, the shadow predicts the same
    shares on the wrong rows: kept out by its realized metric."""
    spec = warehouse[0].model_copy(deep=True)
    spec.serving.shadow_days = 1  # the default (the module's fixture waits 2)
    least = spec.thresholds.min_labeled_rows
    assert least == 30
    labels = [1] * 10 + [0] * 30
    champion = list(labels)
    shadowed = [0] * 10 + [1] * 10 + [0] * 20  # the same share of positives, other rows
    con = duckdb.connect()
    _tables(con, champion, shadowed, labels, trained=list(range(least, 40)))
    c = shadow.compare(con, spec, "2")
    assert c.rows == 40 and c.share_change == 0.0 and c.labeled_rows == least and c.champion == "1"
    assert c.realized == {"champion": 1.0, "shadow": 0.0}
    decision, reason = shadow.decide(c, spec)
    assert decision == shadow.KEPT_OUT and "realized f1_fraud 0.000 vs the champion's 1.000" in reason
    con.close()
    # one labeled row fewer than min_labeled_rows: the realized test says so and does not decide
    con = duckdb.connect()
    _tables(con, champion, shadowed, labels, trained=list(range(least - 1, 40)))
    c = shadow.compare(con, spec, "2")
    assert np.isnan(c.realized["shadow"])
    decision, reason = shadow.decide(c, spec)
    assert decision == shadow.PROMOTED and f"too few labels ({least - 1} labeled rows" in reason
    con.close()


def test_the_gate_sends_a_promotion_through_the_shadow_period_when_a_champion_exists():
    promote = evaluation.Decision(True, "f1 0.5 >= champion 0.4 - margin 0.01")
    assert evaluation.through_shadow(promote, None, 1) is promote  # no champion yet: champion at once
    assert evaluation.through_shadow(promote, "3", 0) is promote  # serving.shadow_days 0: off
    keep = evaluation.Decision(False, "worse")
    assert evaluation.through_shadow(keep, "3", 1) is keep
    shadowed = evaluation.through_shadow(promote, "3", 2)
    assert shadowed.promote and shadowed.shadow and shadowed.name == evaluation.SHADOW
    assert "scores 2 live partition(s) as shadow beside champion v3" in shadowed.reason


def test_a_promotion_by_hand_ends_a_shadow_period(warehouse):
    """`mlinfra model promote` (a rollback) is a person's choice: a pending shadow must not overrule it."""
    spec, resources = warehouse
    tracker = resources["mlflow"]
    model = fixture_model(spec, resources["warehouse"].path)
    kept, pending = register_champion(resources, spec, model), register_champion(resources, spec, model)
    registry.set_alias(tracker, spec.name, registry.CHAMPION, kept)
    registry.set_alias(tracker, spec.name, registry.SHADOW, pending)
    assert registry.promote(tracker, spec.name, kept) == kept
    assert registry.champion_version(tracker, spec.name) == kept
    assert registry.alias_version(tracker, spec.name, registry.SHADOW) is None
    tags = registry._client(tracker).get_model_version(spec.name, pending).tags
    assert tags["shadow_decision"].startswith("ended by hand") and f"version {kept}" in tags["shadow_decision"]
