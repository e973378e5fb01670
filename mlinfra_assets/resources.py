"""Typed resources: the DuckDB warehouse, the data folder, MLflow tracking."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import dagster as dg
import duckdb
import pandas as pd

from mlinfra_assets import mlflow_store
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.warehouse_file import (  # noqa: F401 - LOCK_MESSAGE, WarehouseBusy, default_data_dir: part of this module's API
    LOCK_MESSAGE,
    WarehouseBusy,
    data_root,
    default_data_dir,
    open_duckdb,
    warehouse_path,
)

FAILPOINT = "MLINFRA_FAILPOINT"
API_KEY_VAR = "LABEL_STUDIO_API_KEY"


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse: one file; short connections; writers go through the `warehouse` pool.

    A connection that meets another process's lock waits up to `lock_timeout_s`, retrying,
    and then raises `WarehouseBusy` naming the file.
    """

    path: str
    lock_timeout_s: float = 120.0
    threads: int = 2
    memory_limit: str = "3GB"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_duckdb(self.path, read_only, self.lock_timeout_s, self.threads, self.memory_limit) as con:
            yield con

    def query_df(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run a read query and return it as a DataFrame (only for what a library needs)."""
        with self.connect(read_only=True) as con:
            return con.execute(sql, params).df()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        with self.connect(read_only=True) as con:
            rows = con.execute(sql, params).fetchall()
            return rows[0][0] if rows else None

    def table_exists(self, qualified: str) -> bool:
        if not Path(self.path).exists():
            return False
        schema, table = qualified.split(".")
        return bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = ? AND table_name = ?",
                [schema, table],
            )
        )

    def row_count(self, qualified: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {qualified}"))


def failpoint(name: str) -> None:
    """Kill this process (SIGKILL) here when MLINFRA_FAILPOINT names this point (fault campaign)."""
    if os.environ.get(FAILPOINT) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def transaction(
    con: duckdb.DuckDBPyConnection, **frames: pd.DataFrame
) -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB transaction, with DataFrames registered under the given names for its SQL.

    Commits when the block ends, rolls back (leaving the previous data) when it raises.
    The fault campaign sets MLINFRA_FAILPOINT=before_commit to kill the process (SIGKILL)
    after the writes and before the commit: the previous version must survive.
    """
    for name, frame in frames.items():
        con.register(name, frame)
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        failpoint("before_commit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in frames:
            con.unregister(name)


def replace_table(
    con: duckdb.DuckDBPyConnection,
    qualified: str,
    select_sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
) -> int:
    """Atomically replace `qualified` with the result of `select_sql`; returns its row count.

    The swap runs in one transaction: a crash leaves the previous version in place.
    """
    schema = qualified.split(".")[0]
    with transaction(con):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE OR REPLACE TABLE {qualified} AS {select_sql}", params)
    return int(con.execute(f"SELECT count(*) FROM {qualified}").fetchall()[0][0])


def replace_table_from_df(con: duckdb.DuckDBPyConnection, qualified: str, df: pd.DataFrame) -> int:
    """Atomically replace `qualified` with a DataFrame's rows."""
    con.register("_incoming_df", df)
    try:
        return replace_table(con, qualified, "SELECT * FROM _incoming_df")
    finally:
        con.unregister("_incoming_df")


class DataDir(dg.ConfigurableResource):
    """The project's data folder: model files, annotation inbox, plots."""

    root: str

    def path(self, *parts: str, mkdir: bool = True) -> Path:
        target = Path(self.root).joinpath(*parts)
        if mkdir:
            target.parent.mkdir(parents=True, exist_ok=True)
        return target

    @property
    def inbox(self) -> Path:
        p = Path(self.root) / "annotations" / "inbox"
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def rejected(self) -> Path:
        p = Path(self.root) / "annotations" / "rejected"
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def processed(self) -> Path:
        p = Path(self.root) / "annotations" / "processed"
        p.mkdir(parents=True, exist_ok=True)
        return p


class MLflowTracker(dg.ConfigurableResource):
    """MLflow tracking and registry. Default: sqlite store and artifacts in the data folder."""

    tracking_uri: str
    artifact_root: str
    experiment: str = "mlinfra"
    ui_url: str = "http://127.0.0.1:5000"

    def activate(self) -> str:
        """Point the mlflow client at this store and return the experiment id."""
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        import mlflow

        store = self.store_uri()
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)
        exp = mlflow.get_experiment_by_name(self.experiment)
        if exp is None:
            Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
            artifact_location = (
                Path(self.artifact_root).resolve().as_uri()
                if "://" not in self.artifact_root
                else self.artifact_root
            )
            exp_id = mlflow.create_experiment(self.experiment, artifact_location=artifact_location)
        else:
            exp_id = exp.experiment_id
        mlflow.set_experiment(experiment_id=exp_id)
        return exp_id

    def store_uri(self) -> str:
        """The URI the mlflow client connects with: `tracking_uri`, plus the password from
        MLFLOW_TRACKING_PASSWORD for a database store whose URI names a user but no password
        (see `tracking_uri_without_credentials`). Never shown or logged; http(s) servers get
        their credentials from mlflow's own variables instead."""
        mlflow_store.seed(self.tracking_uri)  # a new sqlite store: a copy of a migrated empty one
        parts = urlsplit(self.tracking_uri)
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
        if parts.scheme in ("http", "https", "file", "") or not parts.username or parts.password or not password:
            return self.tracking_uri
        netloc = f"{parts.username}:{quote(password, safe='')}@{parts.netloc.split('@', 1)[1]}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def run_link(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"


class LabelStudio(dg.ConfigurableResource):
    """A Label Studio server (label-studio-sdk): from LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY.

    Unset URL = not configured: the queue is still written as a tasks file, nothing is pushed.
    The server runs in its own virtualenv (`make labelstudio`); see docs/labeling.md.
    """

    url: str = ""
    api_key: str = ""
    project_title: str = ""  # default: "mlinfra <spec name>"

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def client(self):  # noqa: ANN201 - a label_studio_sdk.LabelStudio
        if not self.url or not self.api_key:
            raise RuntimeError(
                "Label Studio is not configured: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"
            )
        from label_studio_sdk import LabelStudio as Client

        return Client(base_url=self.url, api_key=self.api_key, timeout=60)


def tracking_uri_without_credentials(uri: str) -> str:
    """An MLflow URI with `user:password@`, without the password (and, for http(s), the user).

    http(s): the user and password move to MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD
    (set here unless already set), which mlflow reads at each request. A database store
    (postgresql://, mysql://, mssql://): the password moves to MLFLOW_TRACKING_PASSWORD and
    `MLflowTracker.store_uri()` puts it back for the client only. Either way the URI that is
    kept, shown in the UI's resource config and logged carries no secret.
    """
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    http = parts.scheme in ("http", "https")
    if http:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(parts.username or ""))
    os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(parts.password))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    if not http and parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


UI_URL_VAR = "MLINFRA_MLFLOW_UI_URL"  # set by `mlinfra ui` for the MLflow UI it starts


def is_tracking_server(tracking_uri: str) -> bool:
    """An MLflow tracking server (http/https), as opposed to a store the client opens itself."""
    return tracking_uri.startswith(("http://", "https://"))


def ui_url(tracking_uri: str, env: Mapping[str, str]) -> str:
    """Where the metadata's `mlflow_run` links point: a tracking server is its own UI; a local
    store is shown by the MLflow UI that `make ui` starts (MLINFRA_MLFLOW_UI_URL, default :5000)."""
    if is_tracking_server(tracking_uri):
        return tracking_uri.rstrip("/")
    return env.get(UI_URL_VAR) or "http://127.0.0.1:5000"


def spark_config(spec: DatasetSpec) -> dict[str, str]:
    """The Spark session's settings: the spec's master, the platform's defaults, the spec's conf,
    then the settings the lake relies on (`spec.SPARK_FIXED_CONF`, which the spec cannot change).
    A local master binds the driver to 127.0.0.1; a cluster's executors must reach the driver,
    so there its address is Spark's default (or `spark.conf`)."""
    from mlinfra_assets.spec import SPARK_FIXED_CONF

    local = spec.spark.master.startswith("local")
    return {
        "spark.master": spec.spark.master,
        "spark.app.name": f"mlinfra-{spec.name}",
        "spark.ui.enabled": "false",
        **({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"} if local else {}),
        "spark.sql.shuffle.partitions": "8",
        # a source's nanosecond timestamps (pandas' default) read as their count, which the
        # ingest turns back into timestamps: Spark refuses the type otherwise
        "spark.sql.legacy.parquet.nanosAsLong": "true",
        "spark.sql.adaptive.enabled": "true",
        **spec.spark.conf,
        # timestamps without a time zone, as DuckDB's TIMESTAMP (Spark's default INT96 reads back
        # as TIMESTAMP WITH TIME ZONE), partition keys in UTC
        **SPARK_FIXED_CONF,
    }


def engine_resources(spec: DatasetSpec) -> dict[str, Any]:
    """The resources the spec's engine needs beyond `default_resources`: with
    `warehouse.engine: spark`, Dagster's lazy PySpark resource (`pyspark`), configured from the
    spec: the JVM starts when a step first asks for the session (the raw ingest, the label
    matrix), not when the run starts."""
    if spec.warehouse.engine != "spark":
        return {}
    try:
        from dagster_pyspark import LazyPySparkResource
    except ImportError as exc:
        from mlinfra_assets.spec import SpecError

        raise SpecError(
            "warehouse.engine spark needs pyspark and dagster-pyspark: pip install -e '.[spark]' (and Java 17+, "
            "make java), or use engine duckdb"
        ) from exc

    return {"pyspark": LazyPySparkResource(spark_config=spark_config(spec))}


def default_resources(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Resources for a data folder.

    Without `data_dir` they come from the environment: MLINFRA_DATA_DIR (default `data/` beside
    the spec file),
    MLINFRA_WAREHOUSE, MLFLOW_TRACKING_URI, LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY. With
    `data_dir` (tests, tools) everything lives inside it and the environment is ignored
    (mlflow itself exports MLFLOW_TRACKING_URI).

    Secrets stay out of the resources' configuration (which the Dagster UI shows and run
    snapshots store): the Label Studio key is an `EnvVar`, read when a run starts, and
    credentials in MLFLOW_TRACKING_URI go to MLflow's username/password variables (a database
    store's password is put back only in the client's connection URI).
    """
    env = os.environ if data_dir is None else {}
    root = data_root(data_dir, env)
    warehouse = warehouse_path(root, env)
    tracking = tracking_uri_without_credentials(env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}")
    api_key = dg.EnvVar(API_KEY_VAR) if env.get(API_KEY_VAR) else ""
    return {
        "warehouse": Warehouse(path=warehouse),
        "data_dir": DataDir(root=str(root)),
        "mlflow": MLflowTracker(tracking_uri=tracking, artifact_root=str(root / "mlartifacts"), ui_url=ui_url(tracking, env)),
        "label_studio": LabelStudio(url=env.get("LABEL_STUDIO_URL", ""), api_key=api_key),
        "io_manager": dg.FilesystemIOManager(base_dir=str(root / "dagster_storage")),
    }
