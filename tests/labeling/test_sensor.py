"""The annotation-file sensor: one run request per new inbox file, none while the inbox is unchanged."""

import dagster as dg

from mlinfra_assets.labeling.sensors import build_annotation_sensor
from mlinfra_assets.resources import DataDir


def test_sensor_requests_a_run_for_new_files_only(tmp_path):
    data_dir = DataDir(root=str(tmp_path))
    sensor = build_annotation_sensor()

    def tick(cursor):
        context = dg.build_sensor_context(resources={"data_dir": data_dir}, cursor=cursor)
        return sensor(context), context.cursor

    result, cursor = tick(None)
    assert isinstance(result, dg.SkipReason)
    (data_dir.inbox / "a.csv").write_text("row_id,label,annotator\n1,1,ana\n")
    result, cursor = tick(cursor)
    assert isinstance(result, dg.RunRequest) and "a.csv" in result.tags["mlinfra/annotation_files"]
    first_key = result.run_key
    result, cursor = tick(cursor)
    assert isinstance(result, dg.SkipReason)  # same file still there: no second run
    (data_dir.inbox / "b.csv").write_text("row_id,label,annotator\n2,0,ana\n")
    result, cursor = tick(cursor)
    assert isinstance(result, dg.RunRequest) and result.run_key != first_key
    assert result.tags["mlinfra/annotation_files"] == "b.csv"
    (data_dir.inbox / ".c.csv.tmp").write_text("partial")  # being written: ignored
    result, cursor = tick(cursor)
    assert isinstance(result, dg.SkipReason)
