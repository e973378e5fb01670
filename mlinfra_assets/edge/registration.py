"""Deployable edge variants registered in MLflow beside the champion: each as its own version of
the spec's model, with alias `champion-<variant>` (e.g. `champion-edge_onnx`).

A variant gets the alias only when it is deployable for the current champion (its metric within
`edge.f1_margin` of fp32 on the holdout; the exact ONNX files also within 1e-4 of torch), and
only where it loads as a portable MLflow model, as the champion does (docs/serving.md):
`edge_onnx` (raw columns, preprocessing inside; needs onnxruntime) and the pruned variants (the
champion's network with zeros; the torch pyfunc). `fp32` is the champion itself. The others are
listed with why not: `dynamic_int8` and `int8_weight_only` load only with mlinfra's kernels
(`Int8Linear`), `onnx_fp32` / `onnx_int8` take encoded inputs that a client could not build
(`edge_onnx` is `onnx_fp32` with the preprocessing inside). An alias whose variant is not
deployable for this champion is removed, so `champion-<variant>` never names a variant that
failed the margin. A build already registered (tag `edge_build`) is not registered again.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from mlinfra_assets.resources import MLflowTracker
from mlinfra_assets.spec import DatasetSpec

ONNX_PYFUNC_CODE = Path(__file__).with_name("onnx_pyfunc_model.py")
NOT_PORTABLE = {
    "fp32": "the champion itself (alias champion)",
    "dynamic_int8": "loads only with mlinfra's kernels (Int8Linear): no portable MLflow model",
    "int8_weight_only": "loads only with mlinfra's kernels (Int8Linear): no portable MLflow model",
    "onnx_fp32": "takes encoded inputs; edge_onnx is the same network with the preprocessing inside",
    "onnx_int8": "takes encoded inputs, not raw columns: a client could not build them",
}
COLUMNS = ["variant", "alias", "version", "registered"]


def alias_of(variant: str) -> str:
    return f"champion-{variant}"


def register_variants(tracker: MLflowTracker, spec: DatasetSpec, champion: str, folder: Path,
                      report: pd.DataFrame, example: pd.DataFrame) -> pd.DataFrame:
    """Register each deployable, portable variant of the build in `folder` (the champion's) and
    point its alias at it; remove the aliases of the others. Returns one row per variant:
    variant, alias, version (or None), registered (what was done, or why not)."""
    import mlflow

    from mlinfra_assets.training import registry

    experiment = tracker.activate()
    client = mlflow.MlflowClient(tracking_uri=tracker.store_uri(), registry_uri=tracker.store_uri())
    build = f"{champion}:{Path(folder).resolve().name}"
    # the champion's data version: its variants were trained on the same rows (mlinfra serve's /version)
    data_version = client.get_run(client.get_model_version(spec.name, champion).run_id).data.tags.get(
        "data_version", "unknown")
    rows = []
    for variant, deployable, reason, value in report[["variant", "deployable", "reason", "metric_value"]].itertuples(
            index=False):
        alias = alias_of(variant)
        current = registry.alias_version(tracker, spec.name, alias)
        why_not = NOT_PORTABLE.get(variant) or (None if deployable else f"not deployable: {reason}")
        if why_not is not None:
            if current is not None:
                client.delete_registered_model_alias(spec.name, alias)
                why_not += f"; alias removed (was version {current})"
            rows.append((variant, alias, None, why_not))
            continue
        if current is not None and client.get_model_version(spec.name, current).tags.get("edge_build") == build:
            rows.append((variant, alias, current, "registered earlier for this build"))
            continue
        tags = {"edge_variant": variant, "source_version": champion}
        version = _log_variant(spec, experiment, Path(folder), variant, example,
                               {"dataset": spec.name, "data_version": data_version, "metric": spec.metric, **tags},
                               {} if pd.isna(value) else {f"holdout_{spec.metric}": float(value)})
        for key, value in {**tags, "edge_build": build}.items():
            client.set_model_version_tag(spec.name, version, key, value)
        client.set_registered_model_alias(spec.name, alias, version)
        rows.append((variant, alias, version, f"registered for champion version {champion}"))
    return pd.DataFrame(rows, columns=COLUMNS)


def _log_variant(spec: DatasetSpec, experiment: str, folder: Path, variant: str, example: pd.DataFrame,
                 run_tags: dict[str, str], metrics: dict[str, float]) -> str:
    """One MLflow run holding the variant as a portable pyfunc, registered as a version of spec.name;
    `metrics`: its figure on the champion's holdout (`mlinfra model list` shows it)."""
    import mlflow
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    from mlinfra_assets.edge.compress import EDGE_FILE
    from mlinfra_assets.training.model import PREDICTED, ScoringModel, write_outputs
    from mlinfra_assets.training.tabular_net import CLASSES, load_net
    from mlinfra_assets.training.tracking import (
        NET_CODE,
        PYFUNC_CODE,
        pinned,
        portable_requirements,
    )

    # what every variant answers, as the champion: a probability per class, the class name
    outputs = Schema([*(ColSpec("double", c) for c in spec.prob_columns), ColSpec("string", PREDICTED)])
    signature = ModelSignature(inputs=infer_signature(example).inputs, outputs=outputs)
    with tempfile.TemporaryDirectory(prefix="mlinfra-variant-") as tmp:
        artifact = Path(tmp) / variant
        if variant == "edge_onnx":
            artifact.mkdir()
            shutil.copy(folder / EDGE_FILE, artifact / EDGE_FILE)
            write_outputs(artifact, json.loads((folder / CLASSES).read_text()))
            code, paths, key = ONNX_PYFUNC_CODE, None, "edge_model"
            requirements = pinned("mlflow-skinny", "onnxruntime", "numpy", "pandas")
        else:  # a pruned variant: the champion's network with zeros, the torch pyfunc
            ScoringModel(*load_net(folder, weights=f"{variant}.pt")).save(artifact)
            code, paths, key = PYFUNC_CODE, [str(NET_CODE)], "scoring_model"
            requirements = portable_requirements()
        with mlflow.start_run(experiment_id=experiment, run_name=f"{spec.name}-v{run_tags['source_version']}-{variant}") as run:
            mlflow.set_tags(run_tags)
            mlflow.log_metrics(metrics)
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(code), code_paths=paths, artifacts={key: str(artifact)},
                signature=signature, registered_model_name=spec.name, pip_requirements=requirements,
            )
    if info.registered_model_version is None:
        raise RuntimeError(f"MLflow did not register edge variant {variant} as {spec.name!r} (run {run.info.run_id})")
    return str(info.registered_model_version)
