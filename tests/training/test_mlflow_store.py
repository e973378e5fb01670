"""A new sqlite MLflow store is a copy of the migrated empty one (mlinfra_assets/mlflow_store.py):
MLflow opens it as one it made itself, each copy's default experiment has that store's artifact
root, an existing store is never replaced, and without a writable cache MLflow migrates as before."""

import sqlite3
from pathlib import Path

import pytest

from mlinfra_assets import mlflow_store
from mlinfra_assets.resources import default_resources


def _experiments(db: Path) -> dict[str, str]:
    con = sqlite3.connect(db)
    try:
        return {name: location for name, location in con.execute("SELECT name, artifact_location FROM experiments")}
    finally:
        con.close()


def test_new_stores_are_copies_of_one_template_that_mlflow_opens_as_its_own(tmp_path, monkeypatch):
    import mlflow
    from mlflow.store.db.utils import _get_latest_schema_revision

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert not mlflow_store.cache_dir().exists()
    stores = []
    for name in ("a", "b"):
        tracker = default_resources(tmp_path / name)["mlflow"]
        experiment_id = tracker.activate()
        client = mlflow.MlflowClient(tracking_uri=tracker.store_uri())
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "m", 1.0)
        stores.append(tmp_path / name / "mlflow.db")
    [template] = mlflow_store.cache_dir().iterdir()
    assert template.name == f"mlflow-{mlflow.__version__}.db"
    assert _experiments(template) == {}  # the default experiment is made by MLflow in each copy
    con = sqlite3.connect(template)
    [(revision,)] = con.execute("SELECT version_num FROM alembic_version").fetchall()
    con.close()
    assert revision == _get_latest_schema_revision()
    for name, db in zip(("a", "b"), stores, strict=True):
        found = _experiments(db)
        assert set(found) == {"Default", "mlinfra"}
        assert found["mlinfra"] == (tmp_path / name / "mlartifacts").resolve().as_uri()
        assert "cache" not in found["Default"]  # its own artifact root, not the template's folder
    # the two stores are separate: each holds its own run
    for db in stores:
        con = sqlite3.connect(db)
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        con.close()


def test_an_existing_store_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"someone's store")
    mlflow_store.seed(f"sqlite:///{db}")
    assert db.read_bytes() == b"someone's store"
    assert not mlflow_store.cache_dir().exists()  # nothing to seed: no template made either


@pytest.mark.parametrize("uri", ["http://127.0.0.1:5000", "postgresql://u@h/db", "sqlite:///:memory:", "file:///x"])
def test_other_stores_are_left_alone(tmp_path, monkeypatch, uri):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    mlflow_store.seed(uri)
    assert not mlflow_store.cache_dir().exists()


def test_without_a_writable_cache_mlflow_migrates_the_store_itself(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    tracker = default_resources(tmp_path / "data")["mlflow"]
    tracker.activate()
    assert set(_experiments(tmp_path / "data" / "mlflow.db")) == {"Default", "mlinfra"}
    assert not (tmp_path / "data" / "mlflow.db").with_name(".mlflow.db").exists()
    assert [p.name for p in (tmp_path / "data").iterdir() if p.name.startswith(".mlflow.db")] == []


def test_relative_and_absolute_sqlite_uris_name_their_file():
    assert mlflow_store.sqlite_path("sqlite:////tmp/x/mlflow.db") == Path("/tmp/x/mlflow.db")
    assert mlflow_store.sqlite_path("sqlite:///mlflow.db?timeout=5") == Path("mlflow.db")
    assert mlflow_store.sqlite_path("sqlite:///:memory:") is None
    assert mlflow_store.sqlite_path("mysql://h/db") is None
