"""The code location: it loads, names every stage's asset, and rejects a spec that does not fit the data."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlinfra_assets import keys
from mlinfra_assets.definitions import build_definitions
from mlinfra_assets.spec import DEFAULT_SPEC, SpecError, load_spec

EXPECTED = {
    "source/transactions", "oracle/labels", "raw/transactions", "raw/quarantine",
    "labeling/label_matrix", "labeling/lf_summary", "labeling/weak_labels",
    "labeling/annotation_queue", "labeling/annotations", "labeling/gold_labels",
    "synthetic/synthesizer", "synthetic/synthetic_rows", "synthetic/synthetic_quality",
    "training/training_set", "training/model", "training/evaluation",
    "edge/compressed_models", "edge/compression_report",
    "monitoring/predictions", "monitoring/shadow", "monitoring/drift_report",
}


def test_every_stage_is_in_the_code_location(spec, resources):
    defs = build_definitions(spec, resources)
    names = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert EXPECTED <= names
    assert any(n.startswith("analytics/") for n in names)
    for job in (keys.FULL_JOB, keys.DAILY_JOB, keys.RETRAIN_JOB, keys.ANNOTATIONS_JOB):
        executor = defs.resolve_job_def(job).executor_def
        # by default steps fork from a server that preloaded the code location (tests/faults runs
        # it for real); the run config can still choose another start method or a limit
        default = executor.apply_config_mapping({}).value["config"]
        assert default["start_method"]["forkserver"]["preload_modules"][0] == "mlinfra_assets.definitions"
        chosen = executor.apply_config_mapping({"config": {"start_method": {"spawn": {}}, "max_concurrent": 2}})
        chosen = chosen.value["config"]
        assert chosen["start_method"] == {"spawn": {}} and chosen["max_concurrent"] == 2
    assert defs.resolve_schedule_def("daily_ingest_and_score")



def test_each_group_is_a_schema_and_names_its_nodes_once(spec, resources):
    """The UI draws a node by the key's last part inside its group box: the group is the key's
    prefix (the DuckDB schema), so no group shows two nodes of the same name."""
    graph = build_definitions(spec, resources).resolve_asset_graph()
    groups: dict[str, list[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name == key.path[0], key.to_user_string()
        groups.setdefault(node.group_name, []).append(key.path[-1])
    assert all(len(names) == len(set(names)) for names in groups.values()), groups
    assert {"source", "oracle", "raw"} <= set(groups) and "transactions" in groups["source"]

def _write_spec(tmp_path, **changes):
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    data.pop("demo")
    data["annotator"]["simulated"] = False
    data.update(changes)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_spec(path)


def test_a_missing_column_fails_at_load_and_is_named(tmp_path, resources):
    cols = ["txn_id", "ts", "hour"]
    pd.DataFrame({c: [1] for c in cols}).to_parquet(tmp_path / "t.parquet")
    spec = _write_spec(
        tmp_path,
        source={"kind": "parquet", "path": str(tmp_path / "t.parquet"), "name": "transactions",
                "start_date": "2026-01-01"},
    )
    with pytest.raises(SpecError, match=r"amount"):
        build_definitions(spec, resources)


def test_a_missing_table_fails_at_load_and_is_named(tmp_path, resources):
    import duckdb

    Path(resources["warehouse"].path).parent.mkdir(parents=True)
    duckdb.connect(resources["warehouse"].path).close()
    spec = _write_spec(tmp_path, source={"kind": "duckdb_table", "table": "sales.orders",
                                         "name": "orders", "start_date": "2026-01-01"})
    with pytest.raises(SpecError, match=r"sales\.orders"):
        build_definitions(spec, resources)


def test_a_wrong_setting_is_named(tmp_path):
    with pytest.raises(SpecError, match="positive_class"):
        _write_spec(tmp_path, positive_class="chargeback")
