"""MLflow logging of a training and of its evaluation; registration as the spec's model."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlinfra_assets.resources import MLflowTracker, is_tracking_server
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training.figures import figure
from mlinfra_assets.training.registry import (
    CHALLENGER,
    SCORING_ARTIFACT,
    set_alias,
    set_training_window,
)
from mlinfra_assets.training.trainer import TrainResult

DAGSTER_RUN_TAG = "dagster_run_id"
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")  # the model's pyfunc, logged as code
NET_CODE = Path(__file__).with_name("tabular_net.py")  # the network it loads, logged as code_paths


@dataclass(frozen=True)
class LoggedModel:
    experiment_id: str
    run_id: str
    version: str
    model_uri: str


def check_reachable(tracker: MLflowTracker, timeout_s: float = 5.0) -> None:
    """Fail fast when an http(s) tracking server does not answer its `/health` endpoint.

    Raises
    ------
    ConnectionError
        naming the URI and what to do; checked before training, so no time is spent on a
        model that could not be logged (and the champion stays where it is).
    """
    import urllib.error
    import urllib.request

    uri = tracker.tracking_uri
    if not is_tracking_server(uri):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as response:
            if response.status == 200:
                return
            problem = f"answered HTTP {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        problem = f"is unreachable ({getattr(exc, 'reason', exc)})"
    raise ConnectionError(
        f"MLflow tracking server {uri} {problem}: start it, or unset MLFLOW_TRACKING_URI to use "
        "the local sqlite store in the data folder"
    )


def training_params(spec: DatasetSpec) -> dict[str, str | float | int]:
    """spec.training flattened to MLflow params (lists as text, weights as weight_<source>)."""
    params = spec.training.model_dump()
    weights = params.pop("weights")
    params["hidden"] = ",".join(str(h) for h in params["hidden"])
    params.update({f"weight_{k}": v for k, v in weights.items()})
    return params


def _log_figures(client, run_id: str, figures: dict[str, tuple[Callable, str]]) -> None:  # noqa: ANN001
    import matplotlib.pyplot as plt

    for path, (draw, title) in figures.items():
        fig = figure(draw, title)
        try:
            client.log_figure(run_id, fig, path)
        finally:
            plt.close(fig)


def log_training(
    tracker: MLflowTracker,
    spec: DatasetSpec,
    result: TrainResult,
    model_dir: Path,
    data_version: str,
    dagster_run_id: str,
    input_example: pd.DataFrame,
    figures: dict[str, tuple[Callable, str]],
    training_window: tuple[str, str] | None = None,
) -> LoggedModel:
    """One MLflow run: params, data version, per-epoch metrics, plots, the model (a portable
    pyfunc over the ScoringModel folder, see `pyfunc_model.py`), registered as `spec.name` with
    alias `challenger`; the registered version's tags hold the first and last partition of the
    rows it was trained on (`training_window`: its drift reference)."""
    import mlflow

    experiment_id = tracker.activate()
    client = mlflow.MlflowClient(tracking_uri=tracker.store_uri())
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{spec.name}-{dagster_run_id[:8]}") as run:
        mlflow.set_tags({DAGSTER_RUN_TAG: dagster_run_id, "dataset": spec.name, "data_version": data_version})
        mlflow.log_params(
            {**training_params(spec), "data_version": data_version, "validation": result.validation,
             "metric_resolved": result.metric, "selected_on": result.selected_on,
             **({"weak_rows_used": result.weak.used} if result.weak else {}),
             "class_weights": ",".join(f"{w:.4f}" for w in result.class_weights)}
        )
        for h in result.history:
            mlflow.log_metrics(_finite({"train_loss": h.train_loss, "val_loss": h.val_loss, "val_f1": h.val_f1,
                                        "val_pr_auc": h.val_pr_auc, f"val_{result.metric}": h.val_metric}),
                               step=h.epoch)
        mlflow.log_metrics(_finite(
            {"best_val_f1": result.best_val_f1, f"best_val_{result.metric}": result.best_val_metric,
             "best_epoch": result.best_epoch, "epochs_run": len(result.history),
             "training_rows": result.train_rows, "validation_rows": result.val_rows,
             "epoch_samples": result.epoch_samples,
             "train_seconds": result.seconds, "samples_per_s": result.samples_per_s,
             "decision_shift": result.decision_shift,
             **({f"choice_{result.metric}_with_weak": result.weak.with_weak,
                 f"choice_{result.metric}_gold_only": result.weak.gold_only} if result.weak else {}),
             **{f"synthetic_scale_{c}": s for c, s in zip(spec.classes, result.synthetic_scale, strict=True)},
             **{f"imputed_{c}": n for c, n in result.missing.items() if n}}
        ))
        _log_figures(client, run.info.run_id, figures)
        mlflow.log_artifacts(str(model_dir), artifact_path=SCORING_ARTIFACT)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            code_paths=[str(NET_CODE)],
            artifacts={SCORING_ARTIFACT: str(model_dir)},
            input_example=input_example,
            registered_model_name=spec.name,
            pip_requirements=portable_requirements(),
        )
    if info.signature is None:
        raise RuntimeError(f"MLflow inferred no signature for {spec.name!r} from the input example")
    if info.registered_model_version is None:
        raise RuntimeError(f"MLflow did not register the model as {spec.name!r}: check {tracker.tracking_uri}")
    version = str(info.registered_model_version)
    if training_window is not None:
        set_training_window(tracker, spec.name, version, training_window)
    set_alias(tracker, spec.name, CHALLENGER, version)
    return LoggedModel(experiment_id, run.info.run_id, version, f"models:/{spec.name}/{version}")


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    """Metrics that are defined (an undefined F1 is left out, not logged as 0)."""
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def portable_requirements() -> list[str]:
    """What the registered model needs, pinned to the versions it was trained with, as the public
    package index spells them: a local build's label (torch's `+cpu`) is dropped, since
    `torch==2.13.0` installs from the index and also matches a local `2.13.0+cpu`. mlflow-skinny
    is MLflow's pyfunc without its server and UI. Given, so MLflow does not infer them in a
    subprocess."""
    return pinned("mlflow-skinny", "torch", "numpy", "pandas")


def pinned(*packages: str) -> list[str]:
    """`package==version` of the installed versions, without a local build's label (`+cpu`)."""
    from importlib.metadata import version

    return [f"{p}=={version(p).split('+')[0]}" for p in packages]


def log_evaluation(
    tracker: MLflowTracker,
    run_id: str,
    metrics: dict[str, float],
    tags: dict[str, str],
    table: pd.DataFrame,
    figures: dict[str, tuple[Callable, str]],
) -> None:
    """Add the holdout evaluation (metrics, decision tags, slice table, plots) to a training run."""
    import mlflow

    tracker.activate()
    client = mlflow.MlflowClient(tracking_uri=tracker.store_uri())
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    _log_figures(client, run_id, figures)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "holdout_slices.csv"
        table.to_csv(path, index=False)
        client.log_artifact(run_id, str(path), artifact_path="evaluation")
