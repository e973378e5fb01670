"""The lake: the Spark engine's tables as Parquet files under one root, read through DuckDB views.

Layout: `<root>/<schema>/<table>/_pkey=<partition key>/*.parquet` (Hive-style folders, one per
partition; `_partition` itself is a column of the files), plus `_schema/`, one empty file that
carries the table's columns when it has no rows yet. Which files make a table is recorded in
the warehouse (`lake.files`, paths relative to the root) with the root and the view's columns
(`lake.tables`), and the table's DuckDB view (`raw.transactions`, ...) reads exactly those files:
every other stage, `mlinfra query` and the `analytics.*` views read a lake table as they read a
DuckDB one.

A write is atomic per commit, and one commit may hold several tables (raw rows and their
quarantine): Spark writes its files to staging folders (`<root>/_staging/<id>`), they are moved
beside the current files under new names, and one DuckDB transaction replaces the manifest lines
of the partitions written and the views. Readers see the previous files until the commit and the
new ones after it; a step that dies before the commit leaves the previous version (its moved
files are orphans, which the table's next commit deletes, and its staging folder, which the next
write's `new_stage` deletes). Replaced files are deleted after the commit. The moves are renames:
the lake is a local or mounted folder. A lake moved to another root (`warehouse.lake`) is read
from there again at its next commit, which points every view at the new root.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import duckdb

if TYPE_CHECKING:  # `mlinfra query` imports this module: no Dagster (resources) at import
    from mlinfra_assets.spec import DatasetSpec

MANIFEST = "lake.files"
TABLES = "lake.tables"
DDL = (
    "CREATE SCHEMA IF NOT EXISTS lake",
    f"CREATE TABLE IF NOT EXISTS {MANIFEST} (table_name VARCHAR, partition_key VARCHAR, "
    "file VARCHAR, committed_at TIMESTAMP)",
    f"CREATE TABLE IF NOT EXISTS {TABLES} (table_name VARCHAR, root VARCHAR, select_list VARCHAR)",
)
PKEY = "_pkey"  # the layout column Spark partitions by (not a column of the files)
SCHEMA_KEY = "__schema__"  # the manifest's key of a table's empty schema file
STAGING = "_staging"


class LakeError(RuntimeError):
    """A lake table cannot be written or read as the spec says."""


@dataclass(frozen=True)
class Write:
    """One table's part of a commit: the staged files of partitions `keys` of `qualified` (those
    without staged files become empty), the view's column order, and casts typing a column of the
    view (`record` as JSON)."""

    qualified: str
    stage: Path
    keys: list[str]
    columns: list[str]
    casts: dict[str, str] = field(default_factory=dict)


def lake_root(spec: DatasetSpec, warehouse_path: str) -> Path:
    """`warehouse.lake` (relative to the spec), else `lake/` beside the warehouse file."""
    if spec.warehouse.lake:
        return Path(spec.resolve(spec.warehouse.lake)).resolve()
    return Path(warehouse_path).resolve().parent / "lake"


def table_dir(root: Path, qualified: str) -> Path:
    schema, name = qualified.split(".")
    return root / schema / name


def new_stage(root: Path) -> Path:
    """A new, empty staging folder for one write (created here). Call it with the warehouse's
    write connection open: no other write can be under way, so the staging folders left by a
    step that died (killed before its `finally`) are deleted first."""
    parent = root / STAGING
    if parent.is_dir():
        for leftover in parent.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
    stage = parent / uuid.uuid4().hex
    stage.mkdir(parents=True)
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


def current_files(con: duckdb.DuckDBPyConnection, root: Path, qualified: str) -> list[str]:
    """The data files of a lake table now, under `root` (empty when it has none, or no manifest yet)."""
    if not _has_manifest(con):
        return []
    return [str(root / r[0]) for r in con.execute(
        f"SELECT file FROM {MANIFEST} WHERE table_name = ? AND partition_key <> ? ORDER BY file",
        [qualified, SCHEMA_KEY]).fetchall()]


def _has_manifest(con: duckdb.DuckDBPyConnection, name: str = "files") -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'lake' AND table_name = ?", [name]
    ).fetchall()[0][0])


def is_lake_table(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Whether the Spark engine wrote `qualified` (it has lines in the manifest)."""
    return _has_manifest(con) and bool(con.execute(
        f"SELECT count(*) FROM {MANIFEST} WHERE table_name = ?", [qualified]).fetchall()[0][0])


def refuse_other_engine(con: duckdb.DuckDBPyConnection, engine: str, tables: list[str]) -> None:
    """Raise LakeError, naming the table and `warehouse.engine`, where one of `tables` was written
    by the other engine in this warehouse (checked before any work of the step)."""
    for qualified in tables:
        schema, name = qualified.split(".")
        kind = con.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, name]).fetchall()
        lake = is_lake_table(con, qualified)
        if engine == "spark" and kind and kind[0][0] != "VIEW":
            written, other = "a DuckDB table (written by warehouse.engine duckdb)", "spark"
        elif engine != "spark" and lake:
            written, other = "a view of the Spark engine's lake (written by warehouse.engine spark)", "duckdb"
        else:
            continue
        raise LakeError(
            f"{qualified} is {written} in this warehouse: the two engines do not share a data folder; use "
            f"a new data folder (--data-dir) for warehouse.engine {other}, or set warehouse.engine back"
        )


def commit(con: duckdb.DuckDBPyConnection, root: Path, writes: list[Write]) -> None:
    """Make each write's staged files its table's partitions and point the views at the tables'
    current files, all in one transaction; the staging folders are removed whatever happens."""
    try:
        staged_files = [staged(w.stage) for w in writes]
        for w, files in zip(writes, staged_files, strict=True):
            if SCHEMA_KEY not in files:
                raise LakeError(f"{w.stage}: no schema file staged for {w.qualified} (lake.write_schema)")
            unknown = sorted(set(files) - set(w.keys) - {SCHEMA_KEY})
            if unknown:
                raise LakeError(f"{w.qualified}: staged partitions {unknown} are not among those written {w.keys}")
        for w in writes:
            refuse_other_engine(con, "spark", [w.qualified])
        moved = [_move(root, w, files) for w, files in zip(writes, staged_files, strict=True)]
        _commit(con, root, writes, moved)
    finally:
        for w in writes:
            shutil.rmtree(w.stage, ignore_errors=True)


def _move(root: Path, write: Write, files: dict[str, list[Path]]) -> list[tuple[str, str]]:
    """Move one write's staged files beside its table's; (key, path relative to the root) of each."""
    target = table_dir(root, write.qualified)
    moved = []
    for key, paths in files.items():
        folder = target / ("_schema" if key == SCHEMA_KEY else f"{PKEY}={quote(key, safe='')}")
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            dest = folder / f"{write.stage.name}-{path.name}"
            os.replace(path, dest)
            moved.append((key, dest.relative_to(root).as_posix()))
    return moved


def _commit(con: duckdb.DuckDBPyConnection, root: Path, writes: list[Write],
            moved: list[list[tuple[str, str]]]) -> None:
    """The manifest and the views of every write in one transaction, then every file of the
    written tables that the manifest no longer names deleted (the replaced ones, and orphans)."""
    from mlinfra_assets.resources import transaction

    live: dict[str, set[str]] = {}
    with transaction(con):
        for ddl in DDL:
            con.execute(ddl)
        for w, files in zip(writes, moved, strict=True):
            replaced = [*w.keys, SCHEMA_KEY]
            placeholders = ", ".join("?" for _ in replaced)
            con.execute(f"DELETE FROM {MANIFEST} WHERE table_name = ? AND partition_key IN ({placeholders})",
                        [w.qualified, *replaced])
            con.executemany(f"INSERT INTO {MANIFEST} VALUES (?, ?, ?, now()::TIMESTAMP)",
                            [[w.qualified, key, path] for key, path in files])
            select = ", ".join(f"CAST({c} AS {w.casts[c]}) AS {c}" if c in w.casts else c for c in w.columns)
            con.execute(f"DELETE FROM {TABLES} WHERE table_name = ?", [w.qualified])
            con.execute(f"INSERT INTO {TABLES} VALUES (?, ?, ?)", [w.qualified, str(root), select])
        # every view from the manifest under this root: the written tables', and any other's that
        # still reads an earlier root (the lake was moved)
        for qualified, select in con.execute(
                f"SELECT table_name, select_list FROM {TABLES} WHERE table_name IN "
                f"({', '.join('?' for _ in writes)}) OR root <> ?", [*(w.qualified for w in writes), str(root)]
        ).fetchall():
            every = [r[0] for r in con.execute(
                f"SELECT file FROM {MANIFEST} WHERE table_name = ? ORDER BY partition_key = ?, file",
                [qualified, SCHEMA_KEY]).fetchall()]
            live[qualified] = {_relative(root, f) for f in every}
            _replace_view(con, qualified, [str(root / f) for f in every], select)
        con.execute(f"UPDATE {TABLES} SET root = ?", [str(root)])
    for w in writes:
        _remove_orphans(root, table_dir(root, w.qualified), live[w.qualified])


def _relative(root: Path, file: str) -> str:
    """A manifest path relative to `root` (lines written with absolute paths are read as such)."""
    path = Path(file)
    if path.is_absolute():
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return file
    return path.as_posix()


def _replace_view(con: duckdb.DuckDBPyConnection, qualified: str, files: list[str], select: str) -> None:
    schema = qualified.split(".")[0]
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(f"CREATE OR REPLACE VIEW {qualified} AS SELECT {select} FROM read_parquet([{listed}])")


def _remove_orphans(root: Path, target: Path, live: set[str]) -> None:
    """Delete the table's files that no manifest line names (those a commit replaced, and those
    a step that died before its commit moved there), compared by their path under the root."""
    for path in target.glob("*/*.parquet"):
        if path.relative_to(root).as_posix() not in live:
            path.unlink(missing_ok=True)


def allowed_directories(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The lake folders a read-only analyst connection must still read (the views' files)."""
    if not _has_manifest(con, "tables"):
        return []
    rows = con.execute(f"SELECT table_name, root FROM {TABLES}").fetchall()
    return sorted({str(table_dir(Path(root), name)) + os.sep for name, root in rows})
