"""Annotation files: good files land once, bad ones go to rejected with a reason; the gold-label rule."""

import json
import re
from datetime import datetime

import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.runner import run_assets
from tests.labeling.conftest import labeling_spec, metadata, sql

MANUAL = {"simulated": False, "noise_rate": 0.0, "name": "oracle-sim"}
INGEST = [keys.ANNOTATIONS, keys.GOLD_LABELS]


def _spec():
    return labeling_spec(annotator=MANUAL)


def test_good_file_lands_once_even_if_dropped_twice(resources):
    spec, data_dir = _spec(), resources["data_dir"]
    text = "row_id,label,annotator\n11,1,ana\n12,legit,ana\n13,0,bo\n13,0,bo\n"
    (data_dir.inbox / "batch1.csv").write_text(text)
    first = run_assets(spec, resources, selection=INGEST)
    meta = metadata(first, keys.ANNOTATIONS)
    assert (meta["files_landed"], meta["labels_added"], meta["dagster/row_count"]) == (1, 3, 3)
    (data_dir.inbox / "batch1.csv").write_text(text)
    second = run_assets(spec, resources, selection=INGEST)
    meta = metadata(second, keys.ANNOTATIONS)
    assert (meta["files_landed"], meta["labels_added"], meta["dagster/row_count"]) == (1, 0, 3)
    assert sorted(p.name for p in data_dir.processed.iterdir()) == ["batch1.1.csv", "batch1.csv"]
    assert not list(data_dir.inbox.iterdir())
    rows = sql(resources, "SELECT row_id, label, annotator, source, file FROM labeling.annotations ORDER BY 1")
    assert rows == [(11, 1, "ana", "file", "batch1.csv"), (12, 0, "ana", "file", "batch1.csv"), (13, 0, "bo", "file", "batch1.csv")]


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("no_label.csv", "row_id,annotator\n11,ana\n", "missing column"),
        ("unknown.csv", "row_id,label,annotator\n11,1,ana\n99999999,0,ana\n", "not in raw.transactions"),
        ("range.csv", "row_id,label,annotator\n11,2,ana\n12,maybe,ana\n",
         r"range.csv: class\(es\) \['2', 'maybe'\] unknown to the spec, whose classes are \['legit', 'fraud'\]"),
        ("binary.csv", b"\x00\xff\xfe\x00garbage", "not UTF-8"),
        ("latin1.csv", "row_id,label,annotator\n11,1,Jos\xe9\n".encode("latin-1"), "not UTF-8"),
        ("empty.csv", "", "empty file"),
        ("header_only.csv", "row_id,label,annotator\n", "no rows"),
        ("other_project.json", json.dumps([{"id": 1, "data": {"row_id": "11", "mlinfra_dataset": "churn"},
                                            "annotations": []}]), "not from this dataset"),
        ("broken.json", "[{", "not valid JSON"),
        ("short.csv", "row_id,label,annotator\n11,1\n", "blank value"),
        ("clash.csv", "row_id,label,annotator\n11,1,ana\n11,0,ana\n", "different labels"),
        ("notes.txt", "row_id,label,annotator\n11,1,ana\n", "not a .csv"),
    ],
)
def test_bad_file_is_rejected_with_a_reason_and_good_file_lands(resources, name, content, reason):
    spec, data_dir = _spec(), resources["data_dir"]
    bad = data_dir.inbox / name
    bad.write_bytes(content) if isinstance(content, bytes) else bad.write_text(content)
    (data_dir.inbox / "good.csv").write_text("row_id,label,annotator\n21,1,ana\n22,0,ana\n")
    result = run_assets(spec, resources, selection=INGEST)
    meta = metadata(result, keys.ANNOTATIONS)
    assert (meta["files_landed"], meta["files_rejected"], meta["labels_added"]) == (1, 1, 2)
    assert (data_dir.rejected / name).exists() and (data_dir.processed / "good.csv").exists()
    assert re.search(reason, (data_dir.rejected / f"{name}.reason").read_text())
    assert sql(resources, "SELECT count(*) FROM labeling.annotations WHERE row_id = 11") == [(0,)]


def test_simulated_annotator_answers_the_pending_queue_with_noise(resources):
    spec = labeling_spec(annotator={"simulated": True, "noise_rate": 0.2, "name": "sim"})
    selection = [keys.LABEL_MATRIX, keys.WEAK_LABELS, keys.ANNOTATION_QUEUE, *INGEST]
    result = run_assets(spec, resources, selection=selection)
    assert metadata(result, keys.ANNOTATIONS)["simulated_answers"] == spec.active_learning.batch_size
    agree = metadata(result, keys.GOLD_LABELS)["agreement_with_spec_gold"]
    assert 0.7 < agree < 0.9  # 20% noise
    assert sql(resources, "SELECT DISTINCT source, annotator FROM labeling.annotations") == [("simulator", "sim")]


def test_gold_labels_majority_then_most_recent(resources):
    run_assets(_spec(), resources, selection=INGEST)  # creates the table and the view
    t = [datetime(2026, 3, 1, h) for h in range(6)]
    rows = [
        (1, 1, "a", t[0]), (1, 0, "b", t[1]), (1, 1, "c", t[2]),  # majority: 1
        (2, 1, "a", t[0]), (2, 0, "b", t[1]),  # tie: most recent, 0
        (3, 1, "a", t[0]), (3, 1, "b", t[1]), (3, 0, "a", t[2]),  # a changed to 0: tie, most recent 0
        (4, 0, "a", t[3]), (4, 1, "b", t[1]),  # tie, most recent 0
    ]
    con = duckdb.connect(resources["warehouse"].path)
    con.executemany(
        "INSERT INTO labeling.annotations VALUES (?, ?, ?, 'file', 'test.csv', ?)", rows
    )
    gold = con.execute("SELECT row_id, label, n_annotations FROM labeling.gold_labels ORDER BY 1").fetchall()
    con.close()
    assert gold == [(1, 1, 3), (2, 0, 2), (3, 0, 3), (4, 0, 2)]
