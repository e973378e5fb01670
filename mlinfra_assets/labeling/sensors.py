"""The annotation-file sensor: a new file in the inbox launches the annotations job."""

import hashlib
import json

import dagster as dg

from mlinfra_assets import keys
from mlinfra_assets.resources import DataDir

SENSOR_NAME = "annotation_files"


def inbox_state(data_dir: DataDir) -> list[str]:
    """One fingerprint (`name:size:mtime_ns`) per visible file of the inbox, sorted."""
    files = sorted(p for p in data_dir.inbox.iterdir() if p.is_file() and not p.name.startswith("."))
    return [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]


def build_annotation_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        job_name=keys.ANNOTATIONS_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches the annotations job when a new file appears in the annotation inbox.",
    )
    def annotation_files(context: dg.SensorEvaluationContext, data_dir: DataDir):
        """The cursor holds the fingerprints seen last time: a file triggers one run, a file
        still waiting (or an empty inbox) none; a file dropped again later triggers again."""
        current = inbox_state(data_dir)
        seen = set(json.loads(context.cursor)) if context.cursor else set()
        new = [f for f in current if f not in seen]
        context.update_cursor(json.dumps(current))
        if not new:
            return dg.SkipReason("no new file in the annotation inbox")
        run_key = hashlib.sha1("\n".join(new).encode()).hexdigest()[:16]
        return dg.RunRequest(
            run_key=run_key,
            tags={"mlinfra/annotation_files": ",".join(f.split(":")[0] for f in new)[:200]},
        )

    return annotation_files
