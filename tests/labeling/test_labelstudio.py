"""Label Studio end to end: a real server on 127.0.0.1 gets the queue, annotations posted through
its API come back through the inbox into labeling.annotations."""


import pytest

from mlinfra_assets import keys
from mlinfra_assets.resources import LabelStudio
from mlinfra_assets.runner import run_assets
from tests.conftest import LABEL_STUDIO_TOKEN as TOKEN
from tests.labeling.conftest import labeling_spec, metadata, sql


@pytest.mark.integration
def test_queue_goes_to_label_studio_and_annotations_come_back(resources, label_studio_url):
    spec = labeling_spec(annotator={"simulated": False, "noise_rate": 0.0, "name": "oracle-sim"})
    ls = LabelStudio(url=label_studio_url, api_key=TOKEN)
    resources = {**resources, "label_studio": ls}
    queue = run_assets(spec, resources, selection=[keys.LABEL_MATRIX, keys.WEAK_LABELS, keys.ANNOTATION_QUEUE])
    batch = spec.active_learning.batch_size
    assert metadata(queue, keys.ANNOTATION_QUEUE)["pushed_to_label_studio"] == batch
    assert sql(resources, "SELECT status, count(*) FROM labeling.annotation_queue GROUP BY 1") == [("exported", batch)]

    client = ls.client()
    project = next(p for p in client.projects.list() if p.title == f"mlinfra {spec.name}")
    tasks = list(client.tasks.list(project=project.id))
    assert len(tasks) == batch
    answers = {t.data["row_id"]: spec.classes[k % 2] for k, t in enumerate(tasks[:3])}
    for t in tasks[:3]:
        choice = {"choices": [answers[t.data["row_id"]]]}
        client.annotations.create(id=t.id, result=[{"from_name": "label", "to_name": "row", "type": "choices", "value": choice}])
    client.annotations.create(id=tasks[3].id, result=[], was_cancelled=True)  # skipped in Label Studio

    pulled = run_assets(spec, resources, selection=[keys.ANNOTATIONS, keys.GOLD_LABELS])
    meta = metadata(pulled, keys.ANNOTATIONS)
    assert meta["label_studio_export"].startswith("labelstudio-") and meta["labels_added"] == 3
    rows = sql(resources, "SELECT CAST(row_id AS VARCHAR), label, annotator, source FROM labeling.annotations ORDER BY 1")
    assert rows == sorted((rid, spec.classes.index(c), "ana@mlinfra.local", "labelstudio") for rid, c in answers.items())
    assert sql(resources, "SELECT count(*) FROM labeling.annotation_queue WHERE status = 'labeled'") == [(3,)]

    # pulling the same export again stores nothing twice
    again = metadata(run_assets(spec, resources, selection=[keys.ANNOTATIONS]), keys.ANNOTATIONS)
    assert again["labels_added"] == 0 and sql(resources, "SELECT count(*) FROM labeling.annotations") == [(3,)]
