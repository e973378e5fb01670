"""Training set -> model (MLflow run, registry) -> holdout gate: promotion, rejection, reload."""

import duckdb
import numpy as np
import pytest

from mlinfra_assets import keys
from mlinfra_assets.runner import run_assets
from mlinfra_assets.training import dataset, load_scoring_model, registry
from tests.training.conftest import training_spec


def _evaluation(resources: dict, version: str) -> dict:
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    try:
        rows = con.execute(
            "SELECT slice, slice_value, metric, value, champion_version, decision "
            "FROM training.evaluation WHERE model_version = ?", [version]
        ).fetchall()
    finally:
        con.close()
    return {(s, v, m): (value, champ, decision) for s, v, m, value, champ, decision in rows}


def test_train_register_promote_then_reject_a_worse_model(resources):
    import mlflow

    spec = training_spec()
    first = run_assets(spec, resources, selection=[keys.TRAINING_SET, keys.MODEL, keys.EVALUATION])
    model = first.asset_value(keys.MODEL)
    assert model["name"] == spec.name and model["version"] == "1"
    assert model["model_uri"] == f"models:/{spec.name}/1"

    # MLflow: one run with params, per-epoch metrics, the Dagster run id, the registered version
    tracker = resources["mlflow"]
    tracker.activate()
    client = mlflow.MlflowClient(tracker.tracking_uri)
    run = client.get_run(model["run_id"])
    assert run.data.tags["dagster_run_id"] == first.run_id
    assert run.data.params["hidden"] == "64,32" and "data_version" in run.data.params
    epochs = int(run.data.metrics["epochs_run"])
    assert 1 <= epochs <= spec.training.epochs
    assert len(client.get_metric_history(run.info.run_id, "val_f1")) == epochs
    assert client.get_model_version(spec.name, "1").run_id == run.info.run_id
    assert registry.champion_version(tracker, spec.name) == "1"
    assert registry.alias_version(tracker, spec.name, registry.CHALLENGER) == "1"
    assert run.data.tags["gate_decision"] == "promote"

    # the holdout figures: clearly better than a trivial model
    first_eval = _evaluation(resources, "1")
    f1 = first_eval[("overall", "all", "f1")][0]
    pr_auc = first_eval[("overall", "all", "pr_auc")][0]
    rows, positives = first_eval[("overall", "all", "rows")][0], first_eval[("overall", "all", "positives")][0]
    base_rate = positives / rows
    trivial_f1 = 2 * base_rate / (1 + base_rate)  # everything flagged positive
    assert positives >= 15
    assert f1 > max(0.3, 5 * trivial_f1), f1
    assert pr_auc > base_rate + 0.25, (pr_auc, base_rate)
    assert first_eval[("overall", "all", "f1")][1:] == (None, "promote")
    channels = {v for (s, v, _m) in first_eval if s == "channel"}
    assert channels == {"pos", "online", "atm"}
    assert {s for (s, _v, _m) in first_eval} == {"overall", "channel", "merchant_category"}

    # a deliberately worse model (untrained network) is evaluated but not promoted
    worse = training_spec(epochs=0)
    second = run_assets(worse, resources, selection=[keys.MODEL, keys.EVALUATION])
    assert second.asset_value(keys.MODEL)["version"] == "2"
    assert registry.champion_version(tracker, spec.name) == "1"
    assert registry.alias_version(tracker, spec.name, registry.CHALLENGER) == "2"
    second_eval = _evaluation(resources, "2")
    value, champion, decision = second_eval[("overall", "all", "f1")]
    assert (champion, decision) == ("1", "keep_champion")
    assert value < f1 - spec.training.promotion_margin
    assert second_eval[("overall", "all", "champion_f1")][0] == pytest.approx(f1)

    # re-evaluating replaces that version's rows, never duplicates them
    run_assets(worse, resources, selection=[keys.EVALUATION])
    assert _evaluation(resources, "2").keys() == second_eval.keys()
    assert _evaluation(resources, "1").keys() == first_eval.keys()

    # the champion loads from the registry and scores like the evaluated model
    champion_model = load_scoring_model(tracker, spec.name)
    assert champion_model.version == "1"
    holdout = resources["warehouse"].query_df(dataset.holdout_sql(spec))
    probs = champion_model.predict_proba(holdout)
    assert probs.shape == (len(holdout), 2)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    pred_f1 = _f1(holdout["label"].to_numpy(), probs.argmax(axis=1))
    assert pred_f1 == pytest.approx(f1)
    # the registered pyfunc takes raw feature rows and returns the same probabilities
    pyfunc = mlflow.pyfunc.load_model(f"models:/{spec.name}@champion")
    raw = resources["warehouse"].query_df(f"SELECT * FROM {spec.raw_table} ORDER BY txn_id LIMIT 50")
    out = pyfunc.predict(raw[spec.feature_columns])
    assert list(out.columns) == spec.prob_columns
    assert np.allclose(out.to_numpy(), champion_model.predict_proba(raw), atol=1e-6)


def _f1(labels: np.ndarray, pred: np.ndarray) -> float:
    tp = np.sum((pred == 1) & (labels == 1))
    return 2 * tp / (np.sum(pred == 1) + np.sum(labels == 1))
