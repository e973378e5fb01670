"""The terminal labeler behind `mlinfra label`: one queue row at a time, one key per class.

Keys: `1`..`k` give class 1..k of the spec, `s` skips, `u` undoes the last label or skip,
`q` quits. Each answer is written at once in its own short transaction, so Ctrl-C (or a
crash) loses nothing; the warehouse is not held while the person thinks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

import pandas as pd

from mlinfra_assets.labeling.queries import load_sql
from mlinfra_assets.resources import Warehouse, transaction
from mlinfra_assets.spec import DatasetSpec

SOURCE = "terminal"


@dataclass
class Session:
    labeled: int = 0
    skipped: int = 0
    undone: int = 0
    history: list[tuple[str, object, datetime | None]] = field(default_factory=list)  # (action, row_id, created_at)


def open_rows(warehouse: Warehouse, spec: DatasetSpec) -> pd.DataFrame:
    """Queue rows nobody labeled yet, in asking order, with their features."""
    cols = ", ".join(f"r.{c}" for c in spec.feature_columns)
    return warehouse.query_df(load_sql("queue_open", id_column=spec.id_column, raw_table=spec.raw_table, features=cols))


def context_for(warehouse: Warehouse, spec: DatasetSpec, row_id: object) -> tuple[dict, dict]:
    """The row's LF votes (non-abstaining) and the label model's class probabilities."""
    votes, probs = {}, {}
    if warehouse.table_exists("labeling.label_matrix"):
        row = warehouse.query_df("SELECT * FROM labeling.label_matrix WHERE row_id = ?", [row_id])
        if len(row):
            votes = {k: spec.classes[int(v)] for k, v in row.iloc[0].drop("row_id").items()
                     if pd.notna(v) and 0 <= int(v) < spec.n_classes}
    if warehouse.table_exists("labeling.weak_labels"):
        cols = ", ".join(spec.prob_columns)
        row = warehouse.query_df(f"SELECT {cols} FROM labeling.weak_labels WHERE row_id = ?", [row_id])
        if len(row):
            probs = {c: float(row.iloc[0][col]) for c, col in zip(spec.classes, spec.prob_columns, strict=True)}
    return votes, probs


def show(out: TextIO, spec: DatasetSpec, row: pd.Series, votes: dict, probs: dict, left: int, s: Session) -> None:
    out.write(f"\n--- row {row['row_id']}  (queue rank {row['rank']}, score {row['score']:.3f})"
              f"  labeled {s.labeled} · skipped {s.skipped} · {left} left\n")
    for c in spec.feature_columns:
        out.write(f"  {c:<22} {row[c]}\n")
    out.write("  LF votes: " + (", ".join(f"{k}={v}" for k, v in votes.items()) or "none") + "\n")
    if probs:
        out.write("  model:    " + ", ".join(f"P({k})={v:.2f}" for k, v in probs.items()) + "\n")
    keys = "  ".join(f"[{k + 1}] {c}" for k, c in enumerate(spec.classes))
    out.write(f"  {keys}  [s] skip  [u] undo  [q] quit > ")
    out.flush()


def write_label(warehouse: Warehouse, row_id: object, label: int, annotator: str) -> datetime:
    """Store one label (append) and mark the queue row labeled, in one transaction."""
    now = datetime.now()
    with warehouse.connect() as con, transaction(con):
        con.execute("INSERT INTO labeling.annotations VALUES (?, ?, ?, ?, NULL, ?)", [row_id, label, annotator, SOURCE, now])
        con.execute("UPDATE labeling.annotation_queue SET status = 'labeled' WHERE row_id = ?", [row_id])
    return now


def set_status(warehouse: Warehouse, row_id: object, status: str) -> None:
    with warehouse.connect() as con:
        con.execute("UPDATE labeling.annotation_queue SET status = ? WHERE row_id = ?", [status, row_id])


def undo(warehouse: Warehouse, action: str, row_id: object, created_at: datetime | None, annotator: str) -> None:
    """Take back this session's last answer: the only deletion labeling.annotations sees,
    and only of the label this session wrote a moment ago."""
    with warehouse.connect() as con, transaction(con):
        if action == "label":
            con.execute(
                "DELETE FROM labeling.annotations WHERE row_id = ? AND annotator = ? AND source = ? AND created_at = ?",
                [row_id, annotator, SOURCE, created_at],
            )
        still = con.execute("SELECT count(*) FROM labeling.annotations WHERE row_id = ?", [row_id]).fetchall()[0][0]
        con.execute("UPDATE labeling.annotation_queue SET status = ? WHERE row_id = ?", ["labeled" if still else "pending", row_id])


def label_loop(
    spec: DatasetSpec, warehouse: Warehouse, annotator: str, read_key: Callable[[], str | None], out: TextIO, limit: int | None = None
) -> Session:
    """Ask about open queue rows until the queue is empty, `q`, end of input (`read_key`
    returns None) or `limit` answers. Ctrl-C propagates; every answer before it is stored."""
    if not warehouse.table_exists("labeling.annotation_queue"):
        raise RuntimeError("no annotation queue yet: materialize labeling/annotation_queue first (make run)")
    s = Session()
    skipped_now: set = set()
    while limit is None or s.labeled + s.skipped < limit:
        rows = open_rows(warehouse, spec)
        rows = rows[~rows["row_id"].isin(skipped_now)]
        if rows.empty:
            out.write("\nthe queue is empty: nothing left to label\n")
            break
        row = rows.iloc[0]
        rid = row["row_id"].item() if hasattr(row["row_id"], "item") else row["row_id"]
        show(out, spec, row, *context_for(warehouse, spec, rid), len(rows), s)
        raw = read_key()
        key = "q" if raw is None else raw.strip().lower()
        if key == "q":
            break
        if key == "s":
            set_status(warehouse, rid, "skipped")
            skipped_now.add(rid)
            s.history.append(("skip", rid, None))
            s.skipped += 1
        elif key == "u":
            if not s.history:
                out.write("\nnothing to undo\n")
                continue
            action, rid, at = s.history.pop()
            undo(warehouse, action, rid, at, annotator)
            skipped_now.discard(rid)
            s.labeled -= action == "label"
            s.skipped -= action == "skip"
            s.undone += 1
        elif key.isdigit() and 1 <= int(key) <= spec.n_classes:
            at = write_label(warehouse, rid, int(key) - 1, annotator)
            s.history.append(("label", rid, at))
            s.labeled += 1
        else:
            out.write(f"\nunknown key {key!r}\n")
    out.write(f"\n{s.labeled} labeled, {s.skipped} skipped, {s.undone} undone\n")
    return s


def key_reader(stream: TextIO) -> Callable[[], str | None]:
    """One keypress at a time on a terminal (no Enter needed); one line at a time otherwise."""
    if not stream.isatty():
        return lambda: (stream.readline() or None)
    import termios
    import tty

    def read() -> str | None:
        fd = stream.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            ch = stream.read(1)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        if ch == "\x03":
            raise KeyboardInterrupt
        return ch or None

    return read
