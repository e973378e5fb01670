"""A new MLflow sqlite store starts as a copy of an empty one MLflow migrated once.

MLflow makes a new sqlite store by running its Alembic migrations, 1.5-1.7 s of CPU in a fresh
process, for every new data folder (each `mlinfra init`'d table, each test). The first
store a machine makes for an MLflow version is migrated by MLflow itself, its default experiment
removed, and kept as `~/.cache/mlinfra/mlflow-store/mlflow-<version>.db` (XDG_CACHE_HOME is honoured);
a new store is a copy of it. Opening the copy, MLflow checks the schema revision (a copy of
another version's schema fails that check, so the file name carries the version) and creates
the default experiment with this store's own artifact root. Where the cache cannot be written,
MLflow migrates the new store itself, as without this module.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

SQLITE = "sqlite:///"


def sqlite_path(uri: str) -> Path | None:
    """The file of a `sqlite:///` store URI (relative or absolute); None for any other store."""
    if not uri.startswith(SQLITE):
        return None
    path = uri[len(SQLITE):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlinfra" / "mlflow-store"


def template() -> Path:
    """The migrated empty store for the installed MLflow, made (atomically) where it is missing."""
    from mlflow.version import VERSION

    folder = cache_dir()
    path = folder / f"mlflow-{VERSION}.db"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        db = Path(tmp) / "store.db"
        _migrate(db, Path(tmp) / "artifacts")
        con = sqlite3.connect(db)
        try:  # MLflow creates it again on opening a copy, with that store's artifact root
            with con:
                con.execute("DELETE FROM experiments WHERE experiment_id = 0")
        finally:
            con.close()
        os.replace(db, path)
    return path


def _migrate(db: Path, artifacts: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"{SQLITE}{db}", str(artifacts))
    store.engine.dispose()  # the engine is cached by URI: close its file before the move
    SqlAlchemyStore._engine_map.pop(f"{SQLITE}{db}", None)


def seed(uri: str) -> None:
    """Copy the template to a `sqlite:///` store that does not exist yet (any other URI, or an
    existing file, is left alone)."""
    path = sqlite_path(uri)
    if path is None or path.exists():
        return
    try:
        source = template()
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
            shutil.copyfile(source, tmp.name)
        try:
            os.link(tmp.name, path)  # never over a store another process made meanwhile
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp.name)
    except OSError:  # no writable cache (or no hard links there): MLflow migrates the store itself
        return
