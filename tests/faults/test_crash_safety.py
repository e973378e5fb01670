"""Every writing stage killed with SIGKILL mid-write (after its writes, before the commit):
the previous version of its tables is intact, the DuckDB file opens, and a re-run succeeds."""

import signal

import dagster as dg
import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets, run_job
from tests.faults.concurrency import small_demo_spec
from tests.faults.crash_child import run_killed

pytestmark = pytest.mark.integration

# asset -> the tables it writes
WRITERS = {
    "raw/transactions": ["raw.transactions", "raw.quarantine"],
    "labeling/label_matrix": ["labeling.label_matrix"],
    "labeling/weak_labels": ["labeling.weak_labels"],
    "labeling/lf_summary": ["labeling.lf_summary"],
    "labeling/annotation_queue": ["labeling.annotation_queue"],
    "labeling/annotations": ["labeling.annotations"],
    "synthetic/synthetic_rows": ["synthetic.synthetic_rows"],
    "synthetic/synthetic_quality": ["synthetic.synthetic_quality"],
    "training/training_set": ["training.training_set"],
    "training/evaluation": ["training.evaluation"],
    "edge/compression_report": ["edge.compression_report"],
    "monitoring/predictions": ["monitoring.predictions"],
    "monitoring/drift_report": ["monitoring.drift_report"],
}


def fingerprint(path: str, tables: list[str]) -> dict[str, tuple[int, str]]:
    con = duckdb.connect(path, read_only=True)
    try:
        return {
            t: tuple(
                con.execute(
                    f"SELECT count(*), md5(coalesce(string_agg(x::VARCHAR, '|' ORDER BY x::VARCHAR), '')) "
                    f"FROM {t} AS x"
                ).fetchall()[0]
            )
            for t in tables
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    spec = small_demo_spec(rows=20_000)  # ~300 real fraud rows; the synthetic gate at its default 0.8 (failing, it withholds only the synthetic rows)
    resources = default_resources(root / "data")
    assert run_job(spec, resources, keys.FULL_JOB).success
    spec_json = root / "spec.json"
    spec_json.write_text(spec.model_dump_json())
    return spec, resources, root, spec_json


@pytest.mark.parametrize("asset", list(WRITERS))
def test_killed_mid_write_keeps_the_previous_version(built, asset):
    spec, resources, root, spec_json = built
    path = resources["warehouse"].path
    before = fingerprint(path, WRITERS[asset])
    log = root / f"crash-{asset.replace('/', '-')}.log"
    exitcode = run_killed(str(spec_json), str(root / "data"), [asset], "before_commit", log)
    assert exitcode == -signal.SIGKILL, log.read_text()[-2000:]
    assert fingerprint(path, WRITERS[asset]) == before  # the file opens; the old version is intact
    again = run_assets(
        spec,
        resources,
        selection=dg.AssetSelection.assets(
            dg.AssetKey.from_user_string(asset)
        ).required_multi_asset_neighbors(),
    )
    assert again.success


def test_a_run_killed_between_register_and_gate_leaves_the_champion(built):
    from mlinfra_assets.training import registry

    spec, resources, root, spec_json = built
    mlflow = resources["mlflow"]
    champion = registry.champion_version(mlflow, spec.name)
    log = root / "crash-before-gate.log"
    exitcode = run_killed(str(spec_json), str(root / "data"), ["training/model", "training/evaluation"],
                          "before_gate", log, neighbors=False)
    assert exitcode == -signal.SIGKILL, log.read_text()[-2000:]
    mlflow.activate()
    challenger = registry.alias_version(mlflow, spec.name, "challenger")
    assert challenger is not None and str(challenger) != str(champion)  # registered, not gated
    assert str(registry.champion_version(mlflow, spec.name)) == str(champion)
    # the re-run gates the registered challenger; `mlinfra model promote` (tests/training) rolls back
    assert run_assets(spec, resources, selection=[dg.AssetKey(["training", "evaluation"])]).success
