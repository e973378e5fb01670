"""Training set -> model (MLflow run, registry) -> holdout gate: promotion, rejection, reload."""

import duckdb
import numpy as np
import pytest

from mlinfra_assets import keys
from mlinfra_assets.runner import run_assets
from mlinfra_assets.stage import SHOWN
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
    assert run.data.params["hidden"] == ",".join(map(str, spec.training.hidden))
    assert run.data.params["mixup"] == str(spec.training.mixup)
    assert "data_version" in run.data.params
    epochs = int(run.data.metrics["epochs_run"])
    assert 1 <= epochs <= spec.training.epochs
    assert len(client.get_metric_history(run.info.run_id, "val_f1")) == epochs
    assert client.get_model_version(spec.name, "1").run_id == run.info.run_id
    assert registry.champion_version(tracker, spec.name) == "1"
    assert registry.alias_version(tracker, spec.name, registry.CHALLENGER) == "1"
    assert run.data.tags["gate_decision"] == "promote"
    assert run.data.tags["data_version"] == run.data.params["data_version"]
    artifacts = {a.path for folder in ("plots", "evaluation") for a in client.list_artifacts(run.info.run_id, folder)}
    assert {"plots/loss_curve.png", "plots/validation_pr_curve.png", "plots/validation_calibration.png",
            "plots/validation_confusion.png", "evaluation/pr_curve.png", "evaluation/calibration.png",
            "evaluation/confusion_matrix.png", "evaluation/holdout_slices.csv"} <= artifacts
    logged = mlflow.models.get_model_info(f"models:/{spec.name}/1")
    assert set(logged.signature.inputs.input_names()) == set(spec.feature_columns)
    assert logged.saved_input_example_info is not None
    meta = first.get_asset_materialization_events()
    model_meta = next(e for e in meta if e.asset_key == keys.MODEL).materialization.metadata
    assert model_meta["mlflow_run"].value.endswith(f"/runs/{run.info.run_id}")
    assert model_meta["mlflow_run_id"].value == run.info.run_id

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
    assert {s for (s, _v, _m) in first_eval} == {"overall", "channel", "merchant_category", "class"}
    # the baselines beside the model: always "legit" never finds fraud; random flags at the prior
    assert first_eval[("overall", "all", "baseline_majority_f1")][0] == 0.0
    prior = first_eval[("overall", "all", "baseline_prior_f1")][0]
    assert prior == pytest.approx(base_rate, abs=0.05) and f1 > prior
    assert first_eval[("class", "fraud", "support")][0] == positives
    assert first_eval[("class", "fraud", "f1")][0] == pytest.approx(f1)
    gate_meta = next(e for e in meta if e.asset_key == keys.EVALUATION).materialization.metadata
    assert gate_meta["metric"].value == "f1" and gate_meta["metric_value"].value == pytest.approx(f1, rel=SHOWN)
    assert gate_meta["baseline_majority"].value == 0.0 and gate_meta["beats_majority"].value is True
    assert "pr_curve" in gate_meta and gate_meta["champion_version_after"].value == "1"

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
    pred_f1 = _f1(holdout["_label"].to_numpy(), probs.argmax(axis=1))
    assert pred_f1 == pytest.approx(f1)
    # the registered pyfunc takes raw feature rows and returns the same probabilities
    pyfunc = mlflow.pyfunc.load_model(f"models:/{spec.name}@champion")
    raw = resources["warehouse"].query_df(f"SELECT * FROM {spec.raw_table} ORDER BY txn_id LIMIT 50")
    out = pyfunc.predict(raw[spec.feature_columns])
    assert list(out.columns) == [*spec.prob_columns, "predicted_class"]
    expected = champion_model.predict_proba(raw)
    assert np.allclose(out[spec.prob_columns].to_numpy(), expected, atol=1e-6)
    assert list(out["predicted_class"]) == [spec.classes[i] for i in expected.argmax(axis=1)]


def test_failed_training_never_moves_the_champion(resources, monkeypatch, capsys):
    import socket

    from mlinfra_assets import cli
    from mlinfra_assets.resources import MLflowTracker

    spec = training_spec(epochs=2)
    run_assets(spec, resources, selection=[keys.TRAINING_SET, keys.MODEL, keys.EVALUATION])
    tracker = resources["mlflow"]
    assert registry.champion_version(tracker, spec.name) == "1"

    # an unreachable tracking server: the model step fails before training, nothing moves
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nobody listens there
    down = {**resources, "mlflow": MLflowTracker(tracking_uri=f"http://127.0.0.1:{port}",
                                                 artifact_root=tracker.artifact_root)}
    failed = run_assets(spec, down, selection=[keys.MODEL, keys.EVALUATION], raise_on_error=False)
    assert not failed.success
    assert f"MLflow tracking server http://127.0.0.1:{port} is unreachable" in _failure(failed)
    # a training set with an infinite feature: the model step fails naming the column
    with resources["warehouse"].connect() as con:
        con.execute("UPDATE training.training_set SET amount = 'inf'::DOUBLE WHERE _row_id = "
                    "(SELECT min(_row_id) FROM training.training_set WHERE _source = 'weak')")
    try:
        bad = run_assets(spec, resources, selection=[keys.MODEL, keys.EVALUATION], raise_on_error=False)
    finally:
        run_assets(spec, resources, selection=[keys.TRAINING_SET])
    assert not bad.success
    assert "column 'amount' has 1 infinite" in _failure(bad)
    assert registry.champion_version(tracker, spec.name) == "1"
    assert registry.alias_version(tracker, spec.name, registry.CHALLENGER) == "1"

    # `mlinfra model list` / `promote`: a second version, promoted and rolled back by hand
    run_assets(training_spec(epochs=0), resources, selection=[keys.MODEL, keys.EVALUATION])
    assert registry.champion_version(tracker, spec.name) == "1"
    monkeypatch.setenv("MLINFRA_DATA_DIR", resources["data_dir"].root)
    monkeypatch.setenv("MLINFRA_WAREHOUSE", resources["warehouse"].path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.tracking_uri)
    assert cli.main(["model", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[1].split()[:3] == ["2", "challenger", listing[1].split()[2]] and "keep_champion" in listing[1]
    assert listing[2].split()[:2] == ["1", "champion"] and "promote" in listing[2]
    assert cli.main(["model", "promote", "2"]) == 0
    assert registry.champion_version(tracker, spec.name) == "2"
    assert cli.main(["model", "promote", "1"]) == 0  # rollback
    assert "champion is now version 1 (was 2)" in capsys.readouterr().out
    assert cli.main(["model", "promote", "9"]) == 2
    assert "has no version '9'" in capsys.readouterr().err
    assert registry.champion_version(tracker, spec.name) == "1"


def _failure(result) -> str:  # noqa: ANN001 - an ExecuteInProcessResult
    """The messages of the failed steps' errors, causes included."""
    texts = []
    for event in result.all_events:
        error = event.event_specific_data.error if event.is_step_failure else None
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return "\n".join(texts)


def _f1(labels: np.ndarray, pred: np.ndarray) -> float:
    tp = np.sum((pred == 1) & (labels == 1))
    return 2 * tp / (np.sum(pred == 1) + np.sum(labels == 1))
