"""Security sweep: secrets stay out of logs, metadata and tables; servers bind loopback;
annotation names cannot leave the inbox; LFs load only from the spec's module."""

import os
import sys
from pathlib import Path

import dagster as dg
import pytest

from mlinfra_assets import keys
from mlinfra_assets.definitions import build_definitions
from mlinfra_assets.labeling import annotations
from mlinfra_assets.labeling.lfs import load_lfs
from mlinfra_assets.resources import API_KEY_VAR, default_resources
from mlinfra_assets.runner import run_assets, run_job
from mlinfra_assets.spec import PROJECT_ROOT, SpecError, load_spec
from tests.conftest import LABEL_STUDIO_TOKEN, small_spec
from tests.faults.concurrency import small_demo_spec
from tests.faults.security import BAD_ANNOTATION_NAMES, BAD_LF_MODULES, find_secret, make_ui_command
from tests.servers import exposed, free_port, http_ok, listening, mlflow_server, serve

API_KEY = LABEL_STUDIO_TOKEN  # the session's Label Studio accepts it (tests/conftest.py)
PASSWORD = "sentinelTrackingPw93"


# ---- servers bind loopback -------------------------------------------------------------

@pytest.mark.parametrize("bind", ["0.0.0.0", "127.0.0.1"])
def test_serve_refuses_a_server_listening_beyond_loopback(tmp_path, bind):
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", "--bind", bind, str(port), "--directory", str(tmp_path)]
    started = serve(cmd, tmp_path / "http.log", http_ok(f"http://127.0.0.1:{port}/"), 30)
    if bind == "0.0.0.0":
        with pytest.raises(RuntimeError, match=r"not only on loopback"), started:
            pass
    else:
        with started as proc:
            assert listening(proc.pid) == [("127.0.0.1", port)] and exposed(proc.pid) == []


@pytest.mark.integration
def test_make_ui_serves_on_loopback_only(dagster_dev_server):
    """`make ui` as make prints it (ports swapped for free ones; the session's server, which
    tests/test_webserver.py drives): every socket of dagster dev, its webserver, its code
    server and the MLflow UI listens on loopback."""
    assert "mlinfra" in make_ui_command()[0]
    port, entries, proc, _, mlflow_port = dagster_dev_server
    assert entries and entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
    sockets = listening(proc.pid)
    assert {("127.0.0.1", port), ("127.0.0.1", mlflow_port)} <= set(sockets) and exposed(proc.pid) == [], sockets


# ---- secrets -----------------------------------------------------------------------------

@pytest.fixture
def servers(tmp_path, label_studio_url):
    """The session's Label Studio and an mlflow server of this test."""
    with mlflow_server(tmp_path) as mlflow_url:
        yield label_studio_url, mlflow_url


@pytest.mark.parametrize(("uri", "kept"), [
    ("postgresql://mlinfra:{pw}@127.0.0.1:5432/mlflow", "postgresql://mlinfra@127.0.0.1:5432/mlflow"),
    ("mysql+pymysql://mlinfra:{pw}@db.internal/mlflow?charset=utf8", "mysql+pymysql://mlinfra@db.internal/mlflow?charset=utf8"),
    ("http://mlinfra:{pw}@127.0.0.1:5000", "http://127.0.0.1:5000"),
])
def test_a_tracking_uri_password_stays_out_of_the_resource_config(monkeypatch, tmp_path, uri, kept):
    from urllib.parse import quote, unquote, urlsplit

    secret = PASSWORD + "/@:%"  # characters a URI must escape
    for name in ("MLINFRA_WAREHOUSE", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)  # restored (unset) after the test, whatever the code sets
    monkeypatch.setenv("MLINFRA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(pw=quote(secret, safe="")))
    tracker = default_resources()["mlflow"]
    assert tracker.tracking_uri == kept  # what the UI shows, run snapshots store and errors name
    assert PASSWORD not in repr(tracker.model_dump()) and PASSWORD not in repr(tracker)
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == secret
    client_uri = urlsplit(tracker.store_uri())  # the password is back only for the client
    if kept.startswith("http"):
        assert tracker.store_uri() == kept and os.environ["MLFLOW_TRACKING_USERNAME"] == "mlinfra"
    else:
        assert unquote(client_uri.password) == secret and client_uri.username == "mlinfra"
        assert tracker.store_uri().replace(f":{client_uri.password}@", "@") == kept


@pytest.mark.integration
def test_secrets_stay_out_of_logs_metadata_and_tables(servers, tmp_path, monkeypatch, capfd):
    ls_url, mlflow_url = servers
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    for name in ("MLINFRA_WAREHOUSE", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)  # restored (unset) after the test, whatever the code sets
    monkeypatch.setenv("MLINFRA_DATA_DIR", str(data))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url.replace("http://", f"http://mlinfra:{PASSWORD}@"))
    monkeypatch.setenv("LABEL_STUDIO_URL", ls_url)
    monkeypatch.setenv(API_KEY_VAR, API_KEY)
    resources = default_resources()  # from the environment, as `mlinfra run` and the code location build them
    assert resources["mlflow"].tracking_uri == mlflow_url

    spec = small_demo_spec()
    spec.annotator.simulated = False  # labels come back from Label Studio
    instance = dg.DagsterInstance.from_config(str(home))
    result = run_job(spec, resources, keys.FULL_JOB, instance=instance)
    assert result.success
    meta = result.asset_materializations_for_node("labeling__annotation_queue")[-1].metadata
    assert meta["pushed_to_label_studio"].value > 0  # the key was used against the server

    output = capfd.readouterr()
    defs = build_definitions(spec, resources)
    for secret in (API_KEY, PASSWORD):
        found, searched = find_secret(secret, instance, defs, resources["warehouse"].path, mlflow_url,
                                      [data, home], output.out + output.err)
        assert searched["events"] > 100 and searched["materializations"] > 10, searched
        assert found == [], (secret[:8], found)
    instance.dispose()


# ---- annotation file names ---------------------------------------------------------------

@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    from tests.labeling.conftest import warehouse_assets

    spec = small_spec()
    resources = default_resources(tmp_path_factory.mktemp("names") / "data")
    assert run_assets(spec, resources, selection=warehouse_assets(spec)).success
    return spec, resources


@pytest.mark.parametrize("name", BAD_ANNOTATION_NAMES)
def test_annotation_names_outside_the_inbox_are_refused(warehouse, name):
    """Through the annotations job (the launchpad's `files` config): the run fails naming the
    file; the file outside the inbox is neither read nor moved; no label lands."""
    spec, resources = warehouse
    data_dir = resources["data_dir"]
    outside = Path(data_dir.root) / "escape.csv"
    outside.write_text("row_id,label,annotator\n1,1,eve\n")
    job = build_definitions(spec, resources).resolve_job_def(keys.ANNOTATIONS_JOB)
    result = job.execute_in_process(
        run_config={"ops": {"labeling__annotations": {"config": {"files": [name]}}}}, raise_on_error=False
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "plain file name inside the inbox" in failure.step_failure_data.error.to_string()
    assert outside.exists() and not list(data_dir.rejected.iterdir()) and not list(data_dir.processed.iterdir())
    assert resources["warehouse"].scalar("SELECT count(*) FROM labeling.annotations") == 0


def test_a_link_out_of_the_inbox_is_rejected_and_its_target_untouched(warehouse, tmp_path):
    spec, resources = warehouse
    data_dir = resources["data_dir"]
    target = tmp_path / "secret.csv"
    target.write_text("row_id,label,annotator\n1,1,eve\n")
    os.symlink(target, data_dir.inbox / "innocent.csv")
    with resources["warehouse"].connect() as con:
        report = annotations.ingest_inbox(con, spec, data_dir.inbox, data_dir.processed, data_dir.rejected)
    assert report.landed == [] and [n for n, _ in report.rejected] == ["innocent.csv"]
    assert "symbolic link" in report.rejected[0][1]
    assert target.read_text() == "row_id,label,annotator\n1,1,eve\n"
    for leftover in data_dir.rejected.iterdir():
        leftover.unlink()


# ---- labeling functions load only from the spec's module -----------------------------------

@pytest.mark.parametrize("module", BAD_LF_MODULES)
def test_an_lf_module_that_is_not_a_module_path_is_refused(tmp_path, module):
    spec_file = tmp_path / "spec.yaml"
    text = (PROJECT_ROOT / "mlinfra.yaml").read_text()
    spec_file.write_text(text.replace("labeling_functions: mlinfra_assets.demo.lfs",
                                      f"labeling_functions: {module!r}"))
    with pytest.raises(SpecError, match=r"labeling_functions: .*nor a dotted module path"):
        load_spec(spec_file)


def test_only_the_configured_lf_module_is_imported(tmp_path, monkeypatch):
    """A package with the configured module and a sibling that would leave a mark if imported:
    only the configured one loads; naming the package itself loads none of its modules."""
    package = tmp_path / "lfpkg_sec"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "chosen.py").write_text(
        "from mlinfra_assets.labeling.forms import sql_labeling_function\n"
        "far = sql_labeling_function('far', 'CASE WHEN distance_km > 500 THEN 1 END')\n"
    )
    mark = tmp_path / "imported.mark"
    (package / "sibling.py").write_text(
        f"open({str(mark)!r}, 'w').write('x')\n"
        "from mlinfra_assets.labeling.forms import sql_labeling_function\n"
        "evil = sql_labeling_function('evil', '1')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    lfs = load_lfs(small_spec(labeling_functions="lfpkg_sec.chosen"))
    assert lfs.module == "lfpkg_sec.chosen" and lfs.names == ["far"]
    from mlinfra_assets.labeling.lfs import LabelingFunctionError

    with pytest.raises(LabelingFunctionError, match="defines no labeling function"):
        load_lfs(small_spec(labeling_functions="lfpkg_sec"))
    assert not mark.exists() and "lfpkg_sec.sibling" not in sys.modules
    for name in [m for m in sys.modules if m.startswith("lfpkg_sec")]:
        monkeypatch.delitem(sys.modules, name)
