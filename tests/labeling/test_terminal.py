"""The terminal labeler: keys per class, skip, undo, progress; each answer stored at once (Ctrl-C loses nothing)."""

import io
import os
import subprocess
import sys
from datetime import datetime

import duckdb
import pytest

from mlinfra_assets.labeling import terminal
from mlinfra_assets.labeling.queries import load_sql
from tests.labeling.conftest import labeling_spec, sql

QUEUE = [101, 102, 103, 104, 105]


@pytest.fixture
def queued(resources):
    """A queue of five pending rows (ranks 1..5), no annotation yet."""
    spec = labeling_spec()
    con = duckdb.connect(resources["warehouse"].path)
    ids = {"id_column": spec.id_column, "raw_table": spec.raw_table}
    con.execute(load_sql("annotations_table", **ids))
    con.execute(load_sql("queue_table", **ids))
    con.executemany(
        "INSERT INTO labeling.annotation_queue VALUES (?, 'uncertainty', ?, ?, 'al-x', 'pending', 'b-1', ?)",
        [(rid, 1.0 - k / 10, k + 1, datetime(2026, 3, 1)) for k, rid in enumerate(QUEUE)],
    )
    con.close()
    return resources


def _keys(*keys):
    it = iter(keys)

    def read():
        key = next(it)
        if key is KeyboardInterrupt:
            raise KeyboardInterrupt
        return key

    return read


def test_keys_skip_undo_and_ctrl_c_loses_nothing(queued):
    spec, wh, out = labeling_spec(), queued["warehouse"], io.StringIO()
    read = _keys("2", "s", "u", "1", "x", "1", KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        terminal.label_loop(spec, wh, "ana", read, out)
    rows = sql(queued, "SELECT row_id, label, annotator, source FROM labeling.annotations ORDER BY 1")
    assert rows == [(101, 1, "ana", "terminal"), (102, 0, "ana", "terminal"), (103, 0, "ana", "terminal")]
    status = dict(sql(queued, "SELECT row_id, status FROM labeling.annotation_queue"))
    assert status == {101: "labeled", 102: "labeled", 103: "labeled", 104: "pending", 105: "pending"}
    text = out.getvalue()
    assert "unknown key 'x'" in text and "labeled 2 · skipped 0 · 3 left" in text
    assert "[1] legit  [2] fraud" in text and "amount" in text

    # undo takes back a label: the row is open again, the table holds no trace of it
    session = terminal.label_loop(spec, wh, "bo", _keys("2", "u", "s", "q"), io.StringIO())
    assert (session.labeled, session.skipped, session.undone) == (0, 1, 1)
    assert sql(queued, "SELECT count(*) FROM labeling.annotations WHERE row_id = 104") == [(0,)]
    status = dict(sql(queued, "SELECT row_id, status FROM labeling.annotation_queue"))
    assert (status[104], status[105]) == ("skipped", "pending")


def test_mlinfra_label_command_reads_keys_from_stdin(queued):
    root = os.path.dirname(queued["warehouse"].path)
    env = {**os.environ, "MLINFRA_DATA_DIR": root, "MLINFRA_WAREHOUSE": queued["warehouse"].path}
    done = subprocess.run(
        [sys.executable, "-m", "mlinfra_assets.cli", "label", "--annotator", "cy", "--limit", "2"],
        input="2\n1\n", text=True, capture_output=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "2 labeled, 0 skipped" in done.stdout
    assert sql(queued, "SELECT row_id, label FROM labeling.annotations ORDER BY 1") == [(101, 1), (102, 0)]
