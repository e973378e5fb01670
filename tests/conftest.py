"""Shared fixtures: a small demo spec and resources in a temporary folder."""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TRITON_INTERPRET", "1")
# make test runs two workers on two cores: one BLAS/OpenMP thread per process (the libraries read
# these when they load, below). With their default of a thread per core, the workers' threads and
# those of the Dagster runs they start spin against each other: the loop and the concurrency
# campaign side by side took 339 s and 402 s with the defaults, 261 s and 366 s with one thread.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import signal  # noqa: E402

from mlinfra_assets.resources import default_resources  # noqa: E402
from mlinfra_assets.spec import DEFAULT_SPEC, DatasetSpec, load_spec  # noqa: E402

SMALL_ROWS = 6000


def small_spec(rows: int = SMALL_ROWS, **updates: object) -> DatasetSpec:
    """The demo spec at a test size; `updates` replace top-level sections."""
    spec = load_spec(DEFAULT_SPEC)
    data = spec.model_dump()
    data["demo"]["rows"] = rows
    data["demo"]["drift"]["day"] = None  # stationary unless a test passes its own `demo` (the spec's shift is make run's)
    data.update(updates)
    return DatasetSpec.model_validate(data)


@pytest.fixture
def spec() -> DatasetSpec:
    return small_spec()


@pytest.fixture
def resources(tmp_path: Path) -> dict:
    return default_resources(tmp_path / "data")


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local Spark session per worker (a JVM start), configured as the platform's PySpark
    resource configures it, so the Spark engine's steps reuse it; skips without pyspark or Java."""
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]'")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("no Java runtime: Spark needs Java 17+ (make test installs one where it can)")
    from pyspark.sql import SparkSession

    from mlinfra_assets.resources import spark_config

    builder = SparkSession.builder
    for key, value in (spark_config(small_spec()) | {"spark.master": "local[2]"}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()


# Label Studio wants a 40-character legacy token; a sentinel the security sweep searches for
LABEL_STUDIO_TOKEN = "sentinelApiKey" + "7" * 26


@pytest.fixture(scope="session")
def label_studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Label Studio for the session (its start takes a minute); skips without one."""
    from tests.servers import label_studio

    with label_studio(tmp_path_factory.mktemp("labelstudio"), LABEL_STUDIO_TOKEN) as url:
        yield url


@pytest.fixture(scope="session")
def dagster_dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """One `make ui` (dagster dev and the MLflow UI) for the session over a small demo: (port,
    workspace entries, process, folder, MLflow UI port). tests/test_webserver.py drives it; the
    security sweep checks its sockets."""
    from tests.test_webserver import start_ui

    root = tmp_path_factory.mktemp("ui")
    with start_ui(root) as (port, entries, proc, mlflow_port):
        yield port, entries, proc, root, mlflow_port


@pytest.fixture(scope="session")
def case_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """One data set of tests/own_data (the parameter names it) through `mlinfra init`, the user's
    LF module and `mlinfra run`, as a user runs them, once per session: (case, spec path, the
    run's CompletedProcess). tests/own_data/test_matrix.py checks what the run built;
    tests/test_progress.py what the same wine run printed (a second run of it took 70 s)."""
    from tests.own_data.datasets import CASES
    from tests.own_data.test_matrix import init_case, mlinfra

    root = tmp_path_factory.mktemp(request.param)
    case = CASES[request.param](root)
    spec_path = init_case(case, root)
    return case, spec_path, mlinfra("run", "--spec", str(spec_path))


@pytest.fixture
def label_studio_url(label_studio_server: str) -> str:
    """The session's Label Studio with no project left by an earlier test."""
    from mlinfra_assets.resources import LabelStudio

    client = LabelStudio(url=label_studio_server, api_key=LABEL_STUDIO_TOKEN).client()
    for project in list(client.projects.list()):
        client.projects.delete(id=project.id)
    return label_studio_server


# ---- processes the tests start answer SIGTERM ----
#
# Started as a background job of a shell script, pytest inherits SIGINT ignored, and each
# in-process Dagster run maps SIGTERM to SIGINT's handler (dagster._utils.interrupts): from the
# first run on, the worker ignored SIGTERM, and so did every process it started (an ignored
# signal survives exec). A server the tests stop with SIGTERM then ran until `serve`'s 30 s grace
# ended in SIGKILL: `python -m http.server` in the loopback test and Label Studio at the session's
# end, 30 s each (two loopback tests after an ingest test: 74 s, 13 s with this). SIGTERM's
# default is put back before each test and each teardown (where the session's servers stop).


def _default_sigterm() -> None:
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _default_sigterm()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    _default_sigterm()


# ---- two workers (pytest-xdist: `-n 2 --dist loadgroup --no-loadscope-reorder` in pyproject) ----
#
# A test that uses a module-, class- or package-scoped fixture, or one of the session's servers
# (ONE_WORKER), runs on the worker that built it: such tests form one unit, by module, package or
# server, so each shared fixture is built once, as in a serial run. Tests that share none are
# handed out one by one. Known-slow units go first (the scheduler keeps the collection's order),
# so that the two workers finish together instead of one waiting on a late long campaign.
# (xdist's own xdist_group marks no longer reach its scheduler under pytest 9.2, whose node ids
# cannot be rewritten: the workers write each test's unit to a file that our scheduler reads.)

# nodeid prefix -> seconds on one core (from `pytest --durations`, rounded), spread over the
# tests the prefix matches; a test without one counts 1 s. A unit costs its tests' sum.
SLOW: dict[str, float] = {
    "tests/faults/test_concurrency.py::test_retraining": 300,  # three retraining runs (its fixture)
    "tests/own_data/test_matrix.py": 400,  # the four cases below iris, each `mlinfra run` once
    "tests/own_data/test_matrix.py::test_whole_graph_on_a_new_table[iris]": 275,  # two runs
    "tests/test_loop.py": 275,
    "tests/test_end_to_end.py": 330,  # the whole graph at 20k rows and its re-run
    "tests/faults/test_crash_safety.py": 180,
    "tests/training": 150,
    "tests/synthetic": 150,
    "tests/faults/test_security.py::test_secrets": 120,  # Label Studio (from its template), an mlflow server
    "tests/test_scale.py": 90,  # the whole graph at 200k rows
    "tests/test_webserver.py": 90,
    "tests/labeling/test_labelstudio.py": 40,
    "tests/own_data/test_bad_input.py": 60,
    "tests/test_progress.py::test_failing": 55,
    "tests/edge": 60,
    "tests/faults/test_security.py::test_make_ui": 40,
    "tests/labeling/test_lf_spark.py": 30,
    "tests/warehouse/test_spark_engine.py": 60,
    "tests/warehouse/test_spark_cluster.py": 60,  # a standalone master and two workers, a child driver
}
# session fixtures that start a server or build something several tests read: the tests using one
# (with the same parameter) run on one worker, which builds it once
ONE_WORKER: set[str] = {"label_studio_server", "dagster_dev_server", "case_run", "spark"}


def _shared(item: pytest.Item) -> list[str]:
    """What `item` shares with other tests: its module or package fixtures' scope, its servers."""
    found = []
    for name in item.fixturenames:
        defs = item._fixtureinfo.name2fixturedefs.get(name)
        if not defs:
            continue
        scope = defs[-1].scope
        if scope == "package":
            found.append(defs[-1].baseid or "tests")
        elif scope in ("module", "class"):
            found.append(item.nodeid.split("::")[0])
        elif scope == "session" and name in ONE_WORKER:
            param = getattr(item, "callspec", None) and item.callspec.params.get(name)
            found.append(f"session:{name}" + (f"[{param}]" if param is not None else ""))
    return found


def units(items: list[pytest.Item]) -> dict[str, str]:
    """nodeid -> its unit: tests that share something (transitively) form one unit."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    for item in items:
        keys = [item.nodeid, *_shared(item)]
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
    return {item.nodeid: root(item.nodeid) for item in items}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    matched: dict[str, list[str]] = {}
    for item in items:
        prefixes = [p for p in SLOW if item.nodeid.startswith(p)]
        if prefixes:
            matched.setdefault(max(prefixes, key=len), []).append(item.nodeid)
    cost = {nodeid: SLOW[p] / len(ids) for p, ids in matched.items() for nodeid in ids}
    unit_of = units(items)
    by_unit: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_unit.setdefault(unit_of[item.nodeid], []).append(item)
    ordered = sorted(by_unit.values(), key=lambda unit: -sum(cost.get(i.nodeid, 1.0) for i in unit))
    items[:] = [item for unit in ordered for item in unit]
    folder = getattr(config, "workerinput", {}).get("mlinfra_units")
    if folder:  # a worker: tell the controller's scheduler
        worker = config.workerinput["workerid"]
        Path(folder, f"{worker}.json").write_text(json.dumps(unit_of))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # noqa: ANN001 - an xdist WorkerController
    node.workerinput["mlinfra_units"] = _units_folder(node.config)


def _units_folder(config: pytest.Config) -> str:
    if not hasattr(config, "_mlinfra_units"):
        config._mlinfra_units = tempfile.mkdtemp(prefix="mlinfra-units-")
    return config._mlinfra_units


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN001, ANN201
    """loadgroup's scheduler with the units the workers found (see above)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByUnit(LoadScopeScheduling):
        _unit_of: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._unit_of is None:
                files = sorted(Path(_units_folder(config)).glob("*.json"))
                self._unit_of = json.loads(files[0].read_text()) if files else {}
            return self._unit_of.get(nodeid, nodeid)

    return ByUnit(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "_mlinfra_units"):
        shutil.rmtree(config._mlinfra_units, ignore_errors=True)
