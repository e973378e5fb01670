"""1,000 annotation files dropped at once, 10% corrupt: every good label lands exactly once, every bad
file sits in rejected/ with its reason, and dropping the same files again adds nothing."""

import random

import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.labeling.annotations import ingest_inbox
from mlinfra_assets.runner import run_assets
from tests.conftest import small_spec

pytestmark = pytest.mark.integration

FILES = 1000
CORRUPT = {  # kind -> file content (row ids filled in)
    "unknown_row": lambda ids: "row_id,label,annotator\n999999999,1,ana\n",
    "label_out_of_range": lambda ids: f"row_id,label,annotator\n{ids[0]},7,ana\n",
    "missing_column": lambda ids: f"row_id,annotator\n{ids[0]},ana\n",
    "not_utf8": lambda ids: b"row_id,label,annotator\n" + f"{ids[0]},1,".encode() + b"\xff\xfe\n",
    "empty": lambda ids: "",
}


def _drop(inbox, rng, ids):
    good_labels = set()
    bad = []
    for i in range(FILES):
        if i % 10 == 0:
            kind = list(CORRUPT)[(i // 10) % len(CORRUPT)]
            content = CORRUPT[kind](rng.sample(ids, 1))
            name = f"batch-{i:04d}.csv"
            (inbox / name).write_bytes(content if isinstance(content, bytes) else content.encode())
            bad.append(name)
            continue
        annotator = f"annotator{i % 7}"
        rows = rng.sample(ids, 3)
        labels = [(r, rng.randint(0, 1), annotator) for r in rows]
        good_labels |= set(labels)
        text = "row_id,label,annotator\n" + "".join(f"{r},{y},{a}\n" for r, y, a in labels)
        (inbox / f"batch-{i:04d}.csv").write_text(text)
    return good_labels, bad


def test_a_flood_of_files_lands_each_good_label_once(resources):
    spec = small_spec(rows=4000)
    run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE,
                                           keys.raw_key(spec), keys.QUARANTINE])
    data = resources["data_dir"]
    with duckdb.connect(resources["warehouse"].path, read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT txn_id FROM raw.transactions").fetchall()]
    rng = random.Random(7)
    good, bad = _drop(data.inbox, rng, ids)
    with duckdb.connect(resources["warehouse"].path) as con:
        report = ingest_inbox(con, spec, data.inbox, data.processed, data.rejected)
        stored = set(con.execute("SELECT row_id, label, annotator FROM labeling.annotations").fetchall())
        count = con.execute("SELECT count(*) FROM labeling.annotations").fetchall()[0][0]
    assert len(report.rejected) == len(bad)
    assert stored == good and count == len(good)  # every good label, exactly once
    for name in bad:
        assert (data.rejected / name).exists()
        assert (data.rejected / f"{name}.reason").read_text().strip()
    assert not any(data.inbox.iterdir())
    # the same good files dropped again add nothing
    for path in list(data.processed.iterdir())[:50]:
        (data.inbox / path.name).write_bytes(path.read_bytes())
    with duckdb.connect(resources["warehouse"].path) as con:
        ingest_inbox(con, spec, data.inbox, data.processed, data.rejected)
        assert con.execute("SELECT count(*) FROM labeling.annotations").fetchall()[0][0] == count
