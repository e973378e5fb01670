"""The MLflow model registry: aliases `champion` and `challenger`, and loading by alias."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mlinfra_assets.resources import MLflowTracker

if TYPE_CHECKING:  # torch (~2.5 s): imported where a model is loaded, not with the code location
    from mlinfra_assets.training.model import ScoringModel

CHAMPION = "champion"
CHALLENGER = "challenger"
SHADOW = "shadow"  # a challenger scoring live partitions before promotion (monitoring.shadow)
SCORING_ARTIFACT = "scoring_model"  # run artifact folder holding ScoringModel.save()


def _client(mlflow: MLflowTracker):  # noqa: ANN202 - mlflow.MlflowClient
    from mlflow import MlflowClient

    mlflow.activate()
    store = mlflow.store_uri()
    return MlflowClient(tracking_uri=store, registry_uri=store)


def alias_version(mlflow: MLflowTracker, name: str, alias: str) -> str | None:
    """The version that `alias` points to, or None when the model or the alias does not exist.
    Any other registry error (an unreachable server, a broken store) is raised: read as "no
    champion", it would let the gate promote a challenger without comparing it."""
    from mlflow.exceptions import MlflowException

    client = _client(mlflow)
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        # what MLflow's stores (local and REST) answer for a missing model / a missing alias
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def champion_version(mlflow: MLflowTracker, name: str) -> str | None:
    """The registered version of the current champion; None when there is no champion yet."""
    return alias_version(mlflow, name, CHAMPION)


def set_alias(mlflow: MLflowTracker, name: str, alias: str, version: str) -> None:
    """Point `alias` of registered model `name` at `version` (moving it if it pointed elsewhere)."""
    _client(mlflow).set_registered_model_alias(name, alias, str(version))


WINDOW_TAGS = ("training_window_first", "training_window_last")


def set_training_window(mlflow: MLflowTracker, name: str, version: str, window: tuple[str, str]) -> None:
    """Tag `version` with the first and last partition of the rows it was trained on."""
    client = _client(mlflow)
    for tag, value in zip(WINDOW_TAGS, window, strict=True):
        client.set_model_version_tag(name, str(version), tag, value)


def training_window(mlflow: MLflowTracker, name: str, version: str) -> tuple[str, str] | None:
    """The (first, last) partition `version` was trained on, from its tags; None for a
    version registered before the window was recorded."""
    tags = _client(mlflow).get_model_version(name, str(version)).tags
    if not all(t in tags for t in WINDOW_TAGS):
        return None
    return tags[WINDOW_TAGS[0]], tags[WINDOW_TAGS[1]]


def load_version(mlflow: MLflowTracker, name: str, version: str) -> ScoringModel:
    """Download the ScoringModel of version `version` (its run's `scoring_model` artifacts)."""
    import mlflow as mlflow_lib

    from mlinfra_assets.training.model import ScoringModel

    mv = _client(mlflow).get_model_version(name, str(version))
    with tempfile.TemporaryDirectory(prefix="mlinfra-model-") as tmp:
        local = mlflow_lib.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=SCORING_ARTIFACT, dst_path=tmp
        )
        return ScoringModel.load(Path(local), version=str(mv.version))


def load_scoring_model(mlflow: MLflowTracker, name: str, alias: str = CHAMPION) -> ScoringModel:
    """Resolve `alias` of registered model `name` to a version and load its ScoringModel.

    Raises
    ------
    LookupError
        when the model or the alias does not exist (e.g. no champion before the first evaluation).
    """
    version = alias_version(mlflow, name, alias)
    if version is None:
        raise LookupError(
            f"registered model {name!r} has no alias {alias!r} in {mlflow.tracking_uri}: "
            "materialize training/model and training/evaluation first"
        )
    return load_version(mlflow, name, version)


def list_versions(mlflow: MLflowTracker, name: str) -> list[dict[str, object]]:
    """Every registered version of `name`, newest first: aliases, run, data version, holdout
    figures and the gate's decision (from the version's MLflow run).

    Raises
    ------
    LookupError
        when no model `name` is registered in the tracking store.
    """
    from datetime import datetime

    client = _client(mlflow)
    escaped = name.replace("'", "\\'")
    versions = client.search_model_versions(f"name = '{escaped}'")
    if not versions:
        raise LookupError(f"no model {name!r} is registered in {mlflow.tracking_uri}: materialize training/model")
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for mv in sorted(versions, key=lambda v: -int(v.version)):
        run = client.get_run(mv.run_id)
        m, tags = run.data.metrics, run.data.tags
        rows.append({
            "version": str(mv.version),
            "aliases": ",".join(sorted(aliases.get(str(mv.version), []))),
            "created": datetime.fromtimestamp(mv.creation_timestamp / 1000).isoformat(timespec="seconds"),
            "run_id": mv.run_id,
            "data_version": tags.get("data_version", ""),
            "metric": tags.get("metric", "f1"),
            "holdout_metric": m.get(f"holdout_{tags.get('metric', 'f1')}"),
            "holdout_f1": m.get("holdout_f1"),
            "holdout_pr_auc": m.get("holdout_pr_auc"),
            "holdout_ece": m.get("holdout_ece"),
            "gate": tags.get("gate_decision", "not evaluated"),
            "edge_variant": (mv.tags or {}).get("edge_variant", ""),
        })
    return rows


def promote(mlflow: MLflowTracker, name: str, version: str) -> str | None:
    """Move alias `champion` to `version` by hand (a rollback); returns the previous champion. A
    challenger in its shadow period loses alias `shadow` (the person's choice stands).

    Raises
    ------
    LookupError
        when `version` of `name` does not exist (the champion does not move).
    """
    from datetime import datetime

    from mlflow.exceptions import MlflowException

    client = _client(mlflow)
    try:
        client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise LookupError(
            f"model {name!r} has no version {version!r} in {mlflow.tracking_uri}: "
            "`mlinfra model list` shows the versions"
        ) from exc
    previous = champion_version(mlflow, name)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    when = datetime.now().isoformat(timespec="seconds")
    client.set_model_version_tag(name, str(version), "promoted_by_hand", f"{when} (was {previous})")
    shadow = alias_version(mlflow, name, SHADOW)
    if shadow is not None:  # a person chose the champion: a pending shadow period must not overrule it
        remove_alias(mlflow, name, SHADOW)
        tag_version(mlflow, name, shadow, "shadow_decision",
                    f"ended by hand: {when}, champion set to version {version} (mlinfra model promote)")
    return previous


def remove_alias(mlflow: MLflowTracker, name: str, alias: str) -> None:
    """Delete `alias` of registered model `name` (nothing to do when it does not exist)."""
    if alias_version(mlflow, name, alias) is not None:
        _client(mlflow).delete_registered_model_alias(name, alias)


def tag_version(mlflow: MLflowTracker, name: str, version: str, key: str, value: str) -> None:
    """Set tag `key` of version `version` of registered model `name`."""
    _client(mlflow).set_model_version_tag(name, str(version), key, value)
