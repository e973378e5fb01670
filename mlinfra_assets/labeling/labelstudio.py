"""Label Studio: the queue as tasks, a labeling config from the spec's classes, and reading
Label Studio's JSON export (which lands through the same inbox as every other file).

Each task carries `row_id` and `mlinfra_dataset` (the spec's name): an export whose tasks
lack them, or name another dataset, is another project's export and is rejected.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pandas as pd

from mlinfra_assets.labeling.annotations import AnnotationFileError
from mlinfra_assets.spec import DatasetSpec

FROM_NAME = "label"
TO_NAME = "row"
EXPORT_PREFIX = "labelstudio-"


def label_config(spec: DatasetSpec) -> str:
    """The labeling interface: the row's features as text and one choice per class."""
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in spec.classes)
    return (
        "<View>\n"
        '  <Header value="Row $row_id"/>\n'
        f'  <Text name="{TO_NAME}" value="$text"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInLine="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>"
    )


def tasks(spec: DatasetSpec, rows: pd.DataFrame) -> list[dict]:
    """One Label Studio task per queue row (`row_id`, feature columns, optional `score`)."""
    out = []
    for rec in rows.to_dict("records"):
        text = "\n".join(f"{c}: {rec[c]}" for c in spec.feature_columns)
        data = {"row_id": str(rec["row_id"]), "mlinfra_dataset": spec.name, "text": text}
        data |= {c: _plain(rec[c]) for c in spec.feature_columns}
        out.append({"data": data})
    return out


def write_tasks(spec: DatasetSpec, rows: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    """Write `tasks.json` and `label_config.xml` for a manual import into Label Studio."""
    folder.mkdir(parents=True, exist_ok=True)
    task_file, config_file = folder / "tasks.json", folder / "label_config.xml"
    for path, text in ((task_file, json.dumps(tasks(spec, rows), indent=1)), (config_file, label_config(spec))):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return task_file, config_file


def read_export(text: str, spec: DatasetSpec, name: str) -> pd.DataFrame:
    """Parse a Label Studio JSON export into `row_id, label (class name), annotator`.

    Cancelled (skipped) annotations are left out; an annotator is the user's email when
    the export carries it, else `labelstudio-user-<id>`.

    Raises
    ------
    AnnotationFileError
        Not JSON, not a list of tasks, another dataset's tasks, or a choice outside the
        classes (the caller turns this into a `.reason` file).
    """
    try:
        export = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationFileError(f"{name}: not valid JSON ({exc})") from exc
    if not isinstance(export, list) or not all(isinstance(t, dict) for t in export):
        raise AnnotationFileError(f"{name}: not a Label Studio JSON export (expected a list of tasks)")
    rows = []
    for task in export:
        data = task.get("data") or {}
        if data.get("mlinfra_dataset") != spec.name or "row_id" not in data:
            raise AnnotationFileError(
                f"{name}: task {task.get('id')} is not from this dataset's Label Studio project "
                f"(data.mlinfra_dataset is {data.get('mlinfra_dataset')!r}, expected {spec.name!r}); "
                "export the project mlinfra pushed the queue to"
            )
        for ann in task.get("annotations") or []:
            if ann.get("was_cancelled"):
                continue
            choices = [
                c
                for r in ann.get("result") or []
                if r.get("from_name") == FROM_NAME
                for c in (r.get("value") or {}).get("choices") or []
            ]
            if len(choices) != 1:
                raise AnnotationFileError(
                    f"{name}: task {task.get('id')} has an annotation with {len(choices)} choices "
                    f"for {FROM_NAME!r}; expected exactly one"
                )
            rows.append((str(data["row_id"]), str(choices[0]), _annotator(ann.get("completed_by"))))
    return pd.DataFrame(rows, columns=["row_id", "label", "annotator"], dtype=str)


def export_name(project_id: int, content: bytes) -> str:
    """Inbox file name of a pulled export: project id and a content digest (same export, same name)."""
    return f"{EXPORT_PREFIX}{project_id}-{hashlib.sha1(content).hexdigest()[:12]}.json"


def _annotator(completed_by: object) -> str:
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or f"labelstudio-user-{completed_by.get('id')}")
    return f"labelstudio-user-{completed_by}"


def _plain(value: object) -> object:
    """JSON-friendly scalars (numpy types, NaN as None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


# ---- the server, through label-studio-sdk -------------------------------------------------
def project_id(client, spec: DatasetSpec, title: str = "") -> int:  # noqa: ANN001
    """The id of the dataset's project (`mlinfra <name>` unless titled), created when missing."""
    title = title or f"mlinfra {spec.name}"
    for project in client.projects.list():
        if project.title == title:
            return int(project.id)
    created = client.projects.create(title=title, label_config=label_config(spec))
    return int(created.id)


def push(client, pid: int, spec: DatasetSpec, rows: pd.DataFrame) -> int:  # noqa: ANN001
    """Import queue rows into the project as tasks; returns the number pushed."""
    if rows.empty:
        return 0
    client.projects.import_tasks(id=pid, request=tasks(spec, rows))
    return len(rows)


def pull(client, pid: int) -> bytes:  # noqa: ANN001
    """The project's JSON export of annotated tasks, annotators given by email."""
    raw = b"".join(client.projects.exports.download_sync(id=pid, export_type="JSON"))
    emails = {int(u.id): u.email for u in client.users.list() if u.email}
    export = json.loads(raw)
    for task in export:
        for ann in task.get("annotations") or []:
            uid = ann.get("completed_by")
            if isinstance(uid, int) and uid in emails:
                ann["completed_by"] = {"id": uid, "email": emails[uid]}
    return json.dumps(export, sort_keys=True).encode()
