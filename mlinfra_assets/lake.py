"""The lake: the Spark engine's tables as Parquet files under one root, read through DuckDB views.

Layout: `<root>/<schema>/<table>/_pkey=<partition key>/*.parquet` (Hive-style folders, one per
partition; `_partition` itself is a column of the files), plus `_schema/`, one empty file that
carries the table's columns when it has no rows yet. Which files make a table is recorded in
the warehouse (`lake.files`), and the table's DuckDB view (`raw.transactions`, ...) reads exactly
those: every other stage, `mlinfra query` and the `analytics.*` views read a lake table as they
read a DuckDB one.

A write is atomic per commit: Spark writes its files to a staging folder (`<root>/_staging/<id>`),
they are moved beside the current files under new names, and one DuckDB transaction replaces the
manifest lines of the partitions written and the view. Readers see the previous files until the
commit and the new ones after it; a step that dies before the commit leaves the previous version
(its moved files are orphans, which the table's next commit deletes). Replaced files are deleted
after the commit. The moves are renames: the lake is a local or mounted folder.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import duckdb

if TYPE_CHECKING:  # `mlinfra query` imports this module: no Dagster (resources) at import
    from mlinfra_assets.spec import DatasetSpec

MANIFEST = "lake.files"
MANIFEST_DDL = (
    f"CREATE TABLE IF NOT EXISTS {MANIFEST} (table_name VARCHAR, partition_key VARCHAR, "
    "file VARCHAR, committed_at TIMESTAMP)"
)
PKEY = "_pkey"  # the layout column Spark partitions by (not a column of the files)
SCHEMA_KEY = "__schema__"  # the manifest's key of a table's empty schema file
STAGING = "_staging"


class LakeError(RuntimeError):
    """A lake table cannot be written or read as the spec says."""


def lake_root(spec: DatasetSpec, warehouse_path: str) -> Path:
    """`warehouse.lake` (relative to the spec), else `lake/` beside the warehouse file."""
    if spec.warehouse.lake:
        return Path(spec.resolve(spec.warehouse.lake)).resolve()
    return Path(warehouse_path).resolve().parent / "lake"


def table_dir(root: Path, qualified: str) -> Path:
    schema, name = qualified.split(".")
    return root / schema / name


def new_stage(root: Path) -> Path:
    """An empty staging folder for one write (Spark creates it)."""
    stage = root / STAGING / uuid.uuid4().hex
    stage.parent.mkdir(parents=True, exist_ok=True)
    return stage


def staged(stage: Path) -> dict[str, list[Path]]:
    """The data files of a staging folder by partition key (Spark escapes `:` and the like in
    folder names), and the schema file under SCHEMA_KEY."""
    out: dict[str, list[Path]] = {}
    for folder in sorted(stage.glob(f"{PKEY}=*")):
        files = sorted(folder.glob("*.parquet"))
        if files:
            out[unquote(folder.name[len(PKEY) + 1:])] = files
    schema = sorted((stage / "_schema").glob("*.parquet"))
    if schema:
        out[SCHEMA_KEY] = schema[:1]
    return out


def write_schema(spark_schema: object, stage: Path) -> None:
    """The staged table's empty schema file, from a Spark DataFrame's schema (written locally:
    an empty Spark write is a job of its own)."""
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import to_arrow_schema

    folder = stage / "_schema"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(to_arrow_schema(spark_schema).empty_table(), folder / "schema.parquet")


def current_files(con: duckdb.DuckDBPyConnection, qualified: str) -> list[str]:
    """The data files of a lake table now (empty when it has none, or no manifest yet)."""
    if not _has_manifest(con):
        return []
    return [r[0] for r in con.execute(
        f"SELECT file FROM {MANIFEST} WHERE table_name = ? AND partition_key <> ? ORDER BY file",
        [qualified, SCHEMA_KEY]).fetchall()]


def _has_manifest(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'lake' AND table_name = 'files'"
    ).fetchall()[0][0])


def commit(con: duckdb.DuckDBPyConnection, root: Path, qualified: str, stage: Path, keys: list[str],
           columns: list[str], casts: dict[str, str] | None = None) -> int:
    """Make the staged files the partitions `keys` of `qualified` (those without staged files
    become empty), and point its view at the table's current files; one transaction. Returns
    the number of data files the table has now.

    `columns` is the view's column order; `casts` types a column of the view (`record` as JSON).
    """
    files = staged(stage)
    if SCHEMA_KEY not in files:
        raise LakeError(f"{stage}: no schema file staged for {qualified} (lake.write_schema)")
    unknown = sorted(set(files) - set(keys) - {SCHEMA_KEY})
    if unknown:
        raise LakeError(f"{qualified}: staged partitions {unknown} are not among those written {keys}")
    try:
        every = _move_and_commit(con, root, qualified, stage, files, keys, columns, casts or {})
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return len(every) - 1


def _move_and_commit(con: duckdb.DuckDBPyConnection, root: Path, qualified: str, stage: Path,
                     files: dict[str, list[Path]], keys: list[str], columns: list[str],
                     casts: dict[str, str]) -> list[str]:
    """Move the staged files beside the table's, commit the manifest and the view, then delete
    what they replaced; returns the table's files (the schema file last)."""
    target = table_dir(root, qualified)
    moved: list[tuple[str, str]] = []
    for key, paths in files.items():
        folder = target / ("_schema" if key == SCHEMA_KEY else f"{PKEY}={quote(key, safe='')}")
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            dest = folder / f"{stage.name}-{path.name}"
            os.replace(path, dest)
            moved.append((key, str(dest)))
    from mlinfra_assets.resources import transaction

    replaced = [*keys, SCHEMA_KEY]
    placeholders = ", ".join("?" for _ in replaced)
    with transaction(con):
        con.execute("CREATE SCHEMA IF NOT EXISTS lake")
        con.execute(MANIFEST_DDL)
        old = {r[0] for r in con.execute(
            f"SELECT file FROM {MANIFEST} WHERE table_name = ? AND partition_key IN ({placeholders})",
            [qualified, *replaced]).fetchall()}
        con.execute(f"DELETE FROM {MANIFEST} WHERE table_name = ? AND partition_key IN ({placeholders})",
                    [qualified, *replaced])
        con.executemany(f"INSERT INTO {MANIFEST} VALUES (?, ?, ?, now()::TIMESTAMP)",
                        [[qualified, key, path] for key, path in moved])
        every = [r[0] for r in con.execute(
            f"SELECT file FROM {MANIFEST} WHERE table_name = ? ORDER BY partition_key = ?, file",
            [qualified, SCHEMA_KEY]).fetchall()]
        _replace_view(con, qualified, every, columns, casts)
    live = set(every)
    for path in old - live:
        Path(path).unlink(missing_ok=True)
    _remove_orphans(target, live)
    return every


def _replace_view(con: duckdb.DuckDBPyConnection, qualified: str, files: list[str], columns: list[str],
                  casts: dict[str, str]) -> None:
    schema, name = qualified.split(".")
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name]).fetchall()
    if kind and kind[0][0] != "VIEW":
        raise LakeError(
            f"{qualified} is a DuckDB table in this warehouse (written by engine duckdb): the Spark engine "
            "keeps it in the lake; use a new data folder (--data-dir) for warehouse.engine spark"
        )
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    select = ", ".join(f"CAST({c} AS {casts[c]}) AS {c}" if c in casts else c for c in columns)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(f"CREATE OR REPLACE VIEW {qualified} AS SELECT {select} FROM read_parquet([{listed}])")


def _remove_orphans(target: Path, live: set[str]) -> None:
    """Delete the table's files that no manifest line names (a step that died before its commit)."""
    for path in target.glob("*/*.parquet"):
        if str(path) not in live:
            path.unlink(missing_ok=True)


def allowed_directories(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The lake folders a read-only analyst connection must still read (the views' files)."""
    if not _has_manifest(con):
        return []
    # a file lies in <table>/_pkey=<key>/ or <table>/_schema/
    rows = con.execute(f"SELECT any_value(file) FROM {MANIFEST} GROUP BY table_name").fetchall()
    return sorted({str(Path(r[0]).parent.parent) + os.sep for r in rows})
