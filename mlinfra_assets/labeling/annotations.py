"""Annotation files: the simulated annotator's answers, and landing dropped CSV files.

A file is `row_id,label,annotator`. Good files land in `labeling.annotations` and move to
`processed/`; bad ones move to `rejected/` with a `<name>.reason` file beside them. One bad
file never stops the others.

How a label is read (`label_lookup`): as a class name first (the name wins); a value that is
no name is read as a class index 0..k-1, but only when no class name is itself an integer.
So with `classes: [cat, dog]` both "dog" and "1" mean dog; with numeric class names
(`classes: ["0", "1", "2"]`, or ["1", "2", "3"]) a value is always a name: "1" is the class
named "1", and "0" is refused for classes ["1", "2", "3"] (index or name? it cannot be
told). The same rule lands the spec's gold (`warehouse/gold.py`). Stored labels are indexes.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.labeling.queries import load_sql
from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec

COLUMNS = ["row_id", "label", "annotator"]
SIM_PREFIX = "simulated-"
LABEL_STUDIO_PREFIX = "labelstudio-"
MAX_FILE_BYTES = 20 * 1024 * 1024  # a bigger file is rejected: split it
MAX_FILE_ROWS = 200_000


class AnnotationFileError(ValueError):
    """A file that cannot land; the message is written to its `.reason` file."""


@dataclass
class IngestReport:
    landed: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    labels_added: int = 0
    rows_in_files: int = 0


def simulate_answers(
    pending: pd.DataFrame, n_classes: int, noise_rate: float, annotator: str, seed: int
) -> pd.DataFrame:
    """The simulated annotator: the gold label, replaced by another class with p=noise_rate.

    `pending` has `row_id, label` (gold); the noise is seeded by `seed` and the row ids,
    so the same questions get the same answers.
    """
    digest = hashlib.sha1(pending["row_id"].astype(str).str.cat(sep=",").encode()).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest[:4], "little")])
    labels = pending["label"].to_numpy(dtype=np.int64).copy()
    flip = rng.random(len(labels)) < noise_rate
    labels[flip] = (labels[flip] + rng.integers(1, n_classes, flip.sum())) % n_classes
    return pd.DataFrame({"row_id": pending["row_id"].to_numpy(), "label": labels, "annotator": annotator})


def write_answers(answers: pd.DataFrame, inbox: Path) -> Path:
    """Write answers as a CSV into the inbox (via a hidden temp file, then an atomic rename)."""
    digest = hashlib.sha1(answers.to_csv(index=False).encode()).hexdigest()[:12]
    target = inbox / f"{SIM_PREFIX}{digest}.csv"
    tmp = inbox / f".{target.name}.tmp"
    answers[COLUMNS].to_csv(tmp, index=False)
    tmp.replace(target)
    return target


def inbox_file(inbox: Path, name: str) -> Path:
    """The inbox file called `name`; refuses names that could point outside the inbox."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or Path(name).is_absolute():
        raise AnnotationFileError(
            f"{name!r}: annotation files are named by a plain file name inside the inbox "
            "(no '/', no '..', no absolute path, no NUL byte)"
        )
    return inbox / name


def read_text(path: Path) -> str:
    """The file's text, refused when it is a link, empty, over MAX_FILE_BYTES or not UTF-8."""
    if path.is_symlink():
        raise AnnotationFileError(f"{path.name}: a symbolic link; copy the file itself into the inbox")
    size = path.stat().st_size
    if size == 0:
        raise AnnotationFileError(f"{path.name}: empty file")
    if size > MAX_FILE_BYTES:
        raise AnnotationFileError(
            f"{path.name}: {size} bytes is over the limit of {MAX_FILE_BYTES} bytes; split it into smaller files"
        )
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationFileError(f"{path.name}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc


def read_annotation_file(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Parse and check one file; returns `row_id` (text), `label` (class index), `annotator`.

    A `.csv` has `row_id,label,annotator`; a `.json` is a Label Studio JSON export.

    Raises
    ------
    AnnotationFileError
        Unreadable, too big, not UTF-8, missing columns, empty, blank values, labels out of
        range, another project's export, or one annotator giving one row two labels.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise AnnotationFileError(
            f"{path.name}: not a .csv file (expected columns {COLUMNS}) nor a .json Label Studio export"
        )
    text = read_text(path)
    if suffix == ".json":
        from mlinfra_assets.labeling.labelstudio import read_export

        df = read_export(text, spec, path.name)
    else:
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
        except Exception as exc:  # noqa: BLE001 - any parse error rejects the file
            raise AnnotationFileError(f"{path.name}: unreadable as CSV ({type(exc).__name__}: {exc})") from exc
    return check_rows(df, spec.classes, path.name)


def check_rows(df: pd.DataFrame, classes: list[str], name: str) -> pd.DataFrame:
    """Check parsed rows (see `read_annotation_file`) and map labels to class indexes."""
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise AnnotationFileError(f"{name}: missing column(s) {missing}; has {list(df.columns)}")
    df = df[COLUMNS].fillna("").apply(lambda s: s.str.strip())
    if df.empty:
        raise AnnotationFileError(f"{name}: no rows (no finished annotation)")
    if len(df) > MAX_FILE_ROWS:
        raise AnnotationFileError(f"{name}: {len(df)} rows is over the limit of {MAX_FILE_ROWS}; split the file")
    blank = df[(df == "").any(axis=1)]
    if len(blank):
        raise AnnotationFileError(f"{name}: {len(blank)} row(s) with a blank value, e.g. line {blank.index[0] + 2}")
    lookup, how = label_lookup(classes)
    labels = df["label"].map(lookup)
    if labels.isna().any():
        bad = sorted(df.loc[labels.isna(), "label"].unique())[:5]
        raise AnnotationFileError(
            f"{name}: class(es) {bad} unknown to the spec, whose classes are {classes}: give {how} "
            "(or add the class to the spec's `classes:`)"
        )
    df["label"] = labels.astype(np.int16)
    df = df.drop_duplicates()
    clash = df[df.duplicated(["row_id", "annotator"], keep=False)]
    if len(clash):
        raise AnnotationFileError(
            f"{name}: annotator {clash['annotator'].iloc[0]!r} gives row {clash['row_id'].iloc[0]} "
            "different labels in one file"
        )
    return df.reset_index(drop=True)


def label_lookup(classes: list[str]) -> tuple[dict[str, int], str]:
    """Label text -> class index, and the rule in words (see the module docstring): names
    always; indexes too unless a class name is itself an integer."""
    names = {c: k for k, c in enumerate(classes)}
    if any(_is_int(c) for c in classes):
        return names, "a class name (class names are numbers here, so a value is always read as a name)"
    indexes = {str(k): k for k in range(len(classes))}
    return indexes | names, f"a class name or its index 0..{len(classes) - 1}"


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def ingest_file(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, path: Path, now: datetime
) -> tuple[int, int]:
    """Land one file in one transaction; returns (rows in file, labels added)."""
    df = read_annotation_file(path, spec)
    ids = {"id_column": spec.id_column, "raw_table": spec.raw_table}
    with transaction(con, _incoming=df):
        unknown = [r[0] for r in con.execute(load_sql("unknown_ids", **ids)).fetchall()]
        if unknown:
            raise AnnotationFileError(
                f"{path.name}: {len(unknown)} row id(s) not in {spec.raw_table}, e.g. {unknown[:5]}"
            )
        before = con.execute("SELECT count(*) FROM labeling.annotations").fetchall()[0][0]
        con.execute(load_sql("insert_annotations", **ids), [source_of(path.name), path.name, now])
        after = con.execute("SELECT count(*) FROM labeling.annotations").fetchall()[0][0]
        if _queue_exists(con):
            con.execute(load_sql("mark_labeled"))
    return len(df), int(after - before)


def source_of(name: str) -> str:
    """`simulator`, `labelstudio` (pulled exports) or `file`, from the file's name."""
    if name.startswith(SIM_PREFIX):
        return "simulator"
    return "labelstudio" if name.startswith(LABEL_STUDIO_PREFIX) else "file"


def ingest_inbox(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    inbox: Path,
    processed: Path,
    rejected: Path,
    only: list[str] | None = None,
) -> IngestReport:
    """Land every file of the inbox, or only the named ones (plain names, checked by
    `inbox_file`). Hidden files are skipped: they are being written."""
    report = IngestReport()
    con.execute(load_sql("annotations_table", id_column=spec.id_column, raw_table=spec.raw_table))
    if only is not None:
        paths = [inbox_file(inbox, name) for name in only]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            raise AnnotationFileError(f"file(s) {missing} are not in the inbox {inbox}")
    else:
        paths = [p for p in inbox.iterdir() if (p.is_file() or p.is_symlink()) and not p.name.startswith(".")]
    for path in sorted(paths):
        try:
            rows, added = ingest_file(con, spec, path, datetime.now())
        except AnnotationFileError as exc:
            target = _move(path, rejected)
            target.with_name(target.name + ".reason").write_text(str(exc) + "\n")
            report.rejected.append((path.name, str(exc)))
            continue
        _move(path, processed)
        report.landed.append(path.name)
        report.rows_in_files += rows
        report.labels_added += added
    return report


def _queue_exists(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'labeling' AND table_name = 'annotation_queue'"
        ).fetchall()[0][0]
    )


def _move(path: Path, folder: Path) -> Path:
    """Move a file into `folder`; a name already there gets a numeric suffix (nothing overwritten)."""
    target, n = folder / path.name, 1
    while target.exists():
        target, n = folder / f"{path.stem}.{n}{path.suffix}", n + 1
    shutil.move(str(path), target)
    return target


def write_file(content: bytes, target: Path) -> Path:
    """Write a file into the inbox atomically (hidden temp file, then rename)."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(content)
    tmp.replace(target)
    return target
