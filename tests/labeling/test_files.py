"""Annotation files beyond CSV: Label Studio exports, size and name limits, conflicts, nothing stored changed."""

import json
import os

import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.labeling import annotations, labelstudio
from mlinfra_assets.runner import run_assets
from tests.labeling.conftest import labeling_spec, metadata, sql

MANUAL = {"simulated": False, "noise_rate": 0.0, "name": "oracle-sim"}
INGEST = [keys.ANNOTATIONS, keys.GOLD_LABELS]
ALL_ROWS = "SELECT row_id, label, annotator, source, file, created_at FROM labeling.annotations ORDER BY ALL"


def _spec():
    return labeling_spec(annotator=MANUAL)


def _export(spec, answers, cancelled=()):
    """A Label Studio JSON export as the server writes it: one task per row."""
    out = []
    for i, (row_id, label, user) in enumerate(answers):
        ann = {"id": i, "completed_by": user, "was_cancelled": row_id in cancelled,
               "result": [{"from_name": "label", "to_name": "row", "type": "choices", "value": {"choices": [label]}}]}
        out.append({"id": 100 + i, "data": {"row_id": str(row_id), "mlinfra_dataset": spec.name}, "annotations": [ann]})
    return json.dumps(out)


def test_label_studio_export_lands_with_class_names_and_users(resources):
    spec, data_dir = _spec(), resources["data_dir"]
    text = _export(spec, [(31, "fraud", {"id": 1, "email": "ana@x.org"}), (32, "legit", 2), (33, "fraud", 2)], cancelled={33})
    (data_dir.inbox / "labelstudio-7-abc.json").write_text(text)
    meta = metadata(run_assets(spec, resources, selection=INGEST), keys.ANNOTATIONS)
    assert (meta["files_landed"], meta["labels_added"]) == (1, 2)
    rows = sql(resources, "SELECT row_id, label, annotator, source FROM labeling.annotations ORDER BY 1")
    assert rows == [(31, 1, "ana@x.org", "labelstudio"), (32, 0, "labelstudio-user-2", "labelstudio")]


def test_config_and_parser_follow_the_spec_classes():
    spec = labeling_spec()
    config = labelstudio.label_config(spec)
    assert all(f'<Choice value="{c}"/>' in config for c in spec.classes)
    with pytest.raises(annotations.AnnotationFileError, match="2 choices"):
        bad = json.loads(_export(spec, [(1, "fraud", 1)]))
        bad[0]["annotations"][0]["result"][0]["value"]["choices"] = ["fraud", "legit"]
        labelstudio.read_export(json.dumps(bad), spec, "x.json")


def test_bad_files_change_nothing_stored(resources, monkeypatch):
    spec, data_dir = _spec(), resources["data_dir"]
    (data_dir.inbox / "first.csv").write_text("row_id,label,annotator\n41,1,ana\n42,0,bo\n")
    run_assets(spec, resources, selection=INGEST)
    before = sql(resources, ALL_ROWS)
    monkeypatch.setattr(annotations, "MAX_FILE_BYTES", 200)
    (data_dir.inbox / "huge.csv").write_text("row_id,label,annotator\n" + "41,0,ana\n" * 40)
    outside = data_dir.processed / "first.csv"
    os.symlink(outside, data_dir.inbox / "link.csv")
    (data_dir.inbox / "mixed.csv").write_text("row_id,label,annotator\n41,0,ana\n99999999,1,ana\n")
    meta = metadata(run_assets(spec, resources, selection=INGEST), keys.ANNOTATIONS)
    assert (meta["files_landed"], meta["files_rejected"], meta["labels_added"]) == (0, 3, 0)
    assert sql(resources, ALL_ROWS) == before
    reasons = {p.name: p.read_text() for p in data_dir.rejected.glob("*.reason")}
    assert "over the limit of 200 bytes" in reasons["huge.csv.reason"]
    assert "symbolic link" in reasons["link.csv.reason"]
    assert "not in raw.transactions" in reasons["mixed.csv.reason"]
    assert outside.exists()  # the link's target is untouched


@pytest.mark.parametrize("name", ["../escape.csv", "/etc/passwd", "sub/x.csv", "..", ""])
def test_file_names_outside_the_inbox_are_refused(resources, name):
    spec, data_dir = _spec(), resources["data_dir"]
    con = duckdb.connect(resources["warehouse"].path)
    try:
        with pytest.raises(annotations.AnnotationFileError, match="plain file name"):
            annotations.ingest_inbox(con, spec, data_dir.inbox, data_dir.processed, data_dir.rejected, only=[name])
    finally:
        con.close()


def test_named_files_only_and_conflicts_reported(resources):
    spec, data_dir = _spec(), resources["data_dir"]
    (data_dir.inbox / "a.csv").write_text("row_id,label,annotator\n51,1,ana\n52,0,ana\n")
    (data_dir.inbox / "b.csv").write_text("row_id,label,annotator\n51,0,bo\n52,0,bo\n")
    (data_dir.inbox / "c.csv").write_text("row_id,label,annotator\n51,1,cy\n")
    con = duckdb.connect(resources["warehouse"].path)
    try:
        report = annotations.ingest_inbox(con, spec, data_dir.inbox, data_dir.processed, data_dir.rejected, ["a.csv", "b.csv"])
    finally:
        con.close()
    assert report.landed == ["a.csv", "b.csv"] and (data_dir.inbox / "c.csv").exists()
    meta = metadata(run_assets(spec, resources, selection=INGEST), keys.GOLD_LABELS)
    assert meta["conflicting_rows"] == 1
    assert "ana=fraud, bo=legit, cy=fraud" in meta["conflicts"]  # class names, not indexes
    assert sql(resources, "SELECT label FROM labeling.gold_labels WHERE row_id = 51") == [(1,)]
