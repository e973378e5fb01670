"""Shared fixtures: a small demo spec and resources in a temporary folder."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TRITON_INTERPRET", "1")

from mlinfra_assets.resources import default_resources  # noqa: E402
from mlinfra_assets.spec import DEFAULT_SPEC, DatasetSpec, load_spec  # noqa: E402

SMALL_ROWS = 6000


def small_spec(rows: int = SMALL_ROWS, **updates: object) -> DatasetSpec:
    """The demo spec at a test size; `updates` replace top-level sections."""
    spec = load_spec(DEFAULT_SPEC)
    data = spec.model_dump()
    data["demo"]["rows"] = rows
    data.update(updates)
    return DatasetSpec.model_validate(data)


@pytest.fixture
def spec() -> DatasetSpec:
    return small_spec()


@pytest.fixture
def resources(tmp_path: Path) -> dict:
    return default_resources(tmp_path / "data")
