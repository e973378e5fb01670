"""`mlinfra serve`: a registered model's alias over HTTP, reloaded when the alias moves.

The protocol is MLflow's scoring server's (`POST /invocations` with `dataframe_split`,
`dataframe_records` or `instances` JSON, CSV or Parquet; `GET /ping`, `/health`, `/version`),
and its request parsing and type casts are reused (`mlflow.pyfunc.scoring_server`'s parsers,
MLflow's cast to the signature's types): a client written for `mlflow models serve` works
unchanged. A request that does not fit the signature (a missing column, a value that is not of
its column's type) is refused here with the column named; the pyfunc is then called without
`PyFuncModel.predict`'s second pass over the same schema. The answer is written by pandas' JSON writer: MLflow's goes
through Python's pure-Python JSON encoder and took ~70% of a 1,000-row request. A request is
scored on the event loop, one at a time (one process, 2 cores: torch uses both): handing it to
a thread cost ~1 ms, a fifth of a 1,000-row request; a long request delays `/health` by its
own duration. MLServer was the
alternative; it would add a second server stack and its own model settings for one model, and
neither reloading an alias nor logging to the warehouse comes with it. What this module adds
around MLflow's pieces: the alias watcher (a new version is loaded beside the old one, then
swapped in; requests never wait for a load), `/version` with the model version, run and data
version, a body size limit, short error messages (MLflow's repeat the whole input), and a
record of every request in `monitoring.served_requests` (`request_log.py`).
"""

import contextlib
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlinfra_assets.serving.request_log import RequestLog, ServedRequest
from mlinfra_assets.training import registry

if TYPE_CHECKING:
    from mlinfra_assets.resources import MLflowTracker


class ServeError(RuntimeError):
    """What keeps the server from starting (no such alias, a version it cannot load): said in one line."""


@dataclass(frozen=True)
class Served:
    """One loaded version of the model."""

    version: str
    run_id: str
    data_version: str
    model: Any  # mlflow.pyfunc.PyFuncModel
    loaded_at: datetime

    @property
    def input_schema(self):  # noqa: ANN201 - mlflow.types.Schema
        return self.model.metadata.get_input_schema()


class AliasWatcher:
    """Keeps the version that `alias` points at loaded; checks the registry every `poll_s` seconds."""

    def __init__(self, tracker: "MLflowTracker", name: str, alias: str, poll_s: float = 10.0):
        self.tracker, self.name, self.alias, self.poll_s = tracker, name, alias, poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alias-watcher", daemon=True)
        self.current = self.load(self._version())

    def _version(self) -> str:
        version = registry.alias_version(self.tracker, self.name, self.alias)
        if version is None:
            hint = ("an edge variant gets its alias only when edge/compression_report finds it deployable and "
                    "portable: `mlinfra query \"SELECT variant, deployable, reason FROM edge.compression_report\"` "
                    "says why not" if self.alias.startswith(f"{registry.CHAMPION}-") else
                    "run `mlinfra run` first, or pick a version with `mlinfra model promote`")
            raise ServeError(f"registered model {self.name!r} has no alias {self.alias!r} in "
                             f"{self.tracker.tracking_uri}: {hint}")
        return version

    def load(self, version: str) -> Served:
        import mlflow

        self.tracker.activate()
        client = mlflow.MlflowClient()
        run_id = client.get_model_version(self.name, version).run_id
        try:
            model = mlflow.pyfunc.load_model(f"models:/{self.name}/{version}")
        except ModuleNotFoundError as exc:
            if "mlinfra_assets" not in str(exc):
                raise
            raise ServeError(f"version {version} of {self.name!r} was registered by an earlier mlinfra whose model "
                             f"loads only with the project's code ({exc}): re-materialize training/model to "
                             "register a portable version") from exc
        data_version = client.get_run(run_id).data.tags.get("data_version", "unknown")
        return Served(version, run_id, data_version, model, datetime.now())

    def refresh(self) -> bool:
        """Load and swap in the alias's version if it moved; True when it did."""
        version = self._version()
        if version == self.current.version:
            return False
        loaded = self.load(version)
        previous, self.current = self.current.version, loaded
        print(f"mlinfra serve: {self.name}@{self.alias} moved from version {previous} to {version}; "
              "serving it", file=sys.stderr, flush=True)
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep serving the loaded version; say why it stayed
                print(f"mlinfra serve: still serving version {self.current.version}: {exc}",
                      file=sys.stderr, flush=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def cast_to_schema(frame: Any, schema: Any) -> Any:
    """MLflow's own cast of parsed rows to the signature's types (JSON's 3 for a double column,
    a number for a string column), applied only to the columns whose type differs: MLflow
    casts every column, a copy each, which took a third of a 1,000-row request.

    Raises
    ------
    Refused
        (400) naming the column and a value when a column does not take its type.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.types import Schema
    from mlflow.utils.proto_json_utils import cast_df_types_according_to_schema

    differ = [spec for spec, dtype in zip(schema.inputs, schema.pandas_types(), strict=True)
              if spec.name in frame.columns and frame[spec.name].dtype != dtype]
    if not differ:
        return frame
    try:
        return cast_df_types_according_to_schema(frame.copy(deep=False), Schema(differ))  # frame stays as read
    except MlflowException as exc:  # MLflow names the column or the value, not both
        raise Refused(400, mistyped_column(frame, Schema(differ)) or concise(exc.message)) from exc


def answer(body: bytes, content_type: str, model: Any, schema: Any) -> tuple[int, str]:
    """Parse a request as MLflow's scoring server does, score it, and write `{"predictions":
    [{column: value, ...}, ...]}` with pandas; returns (rows, JSON text).

    Raises
    ------
    Refused
        for a content type or charset the server does not read (415) or a JSON body that is not
        an object (400); MLflow's parsers and the signature check raise `MlflowException`.
    """
    import io
    import json

    import pandas as pd
    from mlflow.pyfunc import scoring_server as mlflow_server
    from pandas.io.json import ujson_loads

    mime, *options = (part.strip() for part in content_type.split(";"))
    if any(o.lower().startswith("charset=") and o.split("=", 1)[1].lower() != "utf-8" for o in options):
        raise Refused(415, "the server reads UTF-8 only")
    params = None
    if mime == mlflow_server.CONTENT_TYPE_JSON:
        try:
            parsed = ujson_loads(body)  # pandas' C parser: twice as fast as json.loads here
        except ValueError:
            try:  # json's message says where (line, column)
                parsed = json.loads(body)
            except ValueError as exc:
                raise Refused(400, f"the body is not JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise Refused(400, f"{mlflow_server.REQUIRED_INPUT_FORMAT}; got a JSON {type(parsed).__name__}")
        params = parsed.get("params")
        frame = mlflow_server.infer_and_parse_data(
            {k: v for k, v in parsed.items() if k in mlflow_server.SUPPORTED_FORMATS}, None)
        if isinstance(frame, dict):  # `instances` / `inputs`: a column per key
            frame = pd.DataFrame({k: list(v) for k, v in frame.items()})
    elif mime == mlflow_server.CONTENT_TYPE_CSV:  # read as it comes, then cast as JSON is
        frame = mlflow_server.parse_csv_input(io.StringIO(body.decode("utf-8")), None)
    elif mime == mlflow_server.CONTENT_TYPE_PARQUET:
        frame = mlflow_server.parse_parquet_input(io.BytesIO(body))
    else:
        raise Refused(415, f"content type {mime!r} is not read: send one of {mlflow_server.CONTENT_TYPES}")
    if not isinstance(frame, pd.DataFrame):
        raise Refused(400, f"{mlflow_server.REQUIRED_INPUT_FORMAT}: the rows did not read as a table")
    frame = cast_to_schema(frame, schema)
    missing = [name for name in schema.required_input_names() if name not in frame.columns]
    if missing:
        raise Refused(400, f"Model is missing inputs {missing}: send every feature column of the model's signature")
    # the columns are cast to the signature above: the pyfunc itself is called without
    # PyFuncModel.predict's second pass over the same schema (a tenth of a request)
    out = model.unwrap_python_model().predict(None, frame, params=params)
    return len(frame), '{"predictions": ' + out.to_json(orient="records", double_precision=15) + "}"


def concise(message: str) -> str:
    """MLflow's error without the input it repeats ("Failed to enforce schema of data '<all rows>'
    ... Error: X" -> X; "... Input: <the body>" dropped)."""
    import re

    repeated = re.match(r"Failed to (?:predict|enforce schema of) data .*?Error: (.*)", message, re.S)
    return (repeated.group(1) if repeated else message).split("\nInput:")[0].strip()[:1000]


def mistyped_column(frame: Any, schema: Any) -> str | None:
    """The first numeric column of `schema` holding a value that is not a number, as a sentence."""
    import numpy as np
    import pandas as pd

    for name, dtype in zip(schema.input_names(), schema.pandas_types(), strict=True):
        if name in frame and np.issubdtype(dtype, np.number):
            values = frame[name]
            bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
            if bad.any():
                return (f"column {name!r} takes numbers ({np.dtype(dtype).name}); {int(bad.sum())} row(s) hold "
                        f"something else, e.g. {values[bad].iloc[0]!r}")
    return None


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes. An oversized body is read to its end
    and dropped (never held), so the client, still sending, gets the answer instead of a reset."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif chunks:
            chunks.clear()
    if size > limit:
        raise Refused(413, f"request body of {size:,} bytes is over the limit of {limit:,} (--max-body-mb): "
                           "send fewer rows per request")
    body = b"".join(chunks)
    if not body.strip():
        raise Refused(400, "empty request body: send rows as JSON ({\"dataframe_split\": ...} or "
                           "{\"dataframe_records\": [...]}), CSV or Parquet")
    return body


def build_app(watcher: AliasWatcher, log: RequestLog, max_body_bytes: int, log_payloads: bool = False):  # noqa: ANN201
    """The FastAPI app: MLflow's scoring endpoints over the watcher's current version."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from mlflow.exceptions import MlflowException

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202, ARG001
        watcher.start()
        log.start()
        yield
        watcher.close()
        log.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/ping")
    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "model": watcher.name, "version": watcher.current.version})

    @app.get("/version")
    async def version() -> JSONResponse:
        import mlflow

        c = watcher.current
        return JSONResponse({"model": watcher.name, "alias": watcher.alias, "version": c.version,
                             "run_id": c.run_id, "data_version": c.data_version,
                             "loaded_at": c.loaded_at.isoformat(timespec="seconds"), "mlflow": mlflow.__version__})

    @app.post("/invocations")
    async def score(request: Request) -> Response:
        started, served = time.perf_counter(), watcher.current
        rows, payload, error = None, None, None
        content_type = request.headers.get("content-type") or "application/json"
        try:
            body = await read_body(request, max_body_bytes)
            payload = body.decode("utf-8", "replace") if log_payloads else None
            rows, text = answer(body, content_type, served.model, served.input_schema)
            response = Response(text, media_type="application/json")
        except Refused as exc:
            error, response = exc.message, JSONResponse({"message": exc.message}, status_code=exc.status)
        except MlflowException as exc:
            error = concise(exc.message)
            response = JSONResponse({"error_code": exc.error_code, "message": error},
                                    status_code=exc.get_http_status_code())
        except Exception as exc:  # noqa: BLE001 - the model failed on rows that passed the checks: said, logged
            error = f"the model could not score these rows: {type(exc).__name__}: {exc}"[:1000]
            response = JSONResponse({"message": error}, status_code=500)
        log.record(ServedRequest(datetime.now(), watcher.name, watcher.alias, served.version, rows,
                                 (time.perf_counter() - started) * 1000, response.status_code, error, payload))
        return response

    return app


def serve(tracker: "MLflowTracker", warehouse_path: str, name: str, alias: str = registry.CHAMPION,
          host: str = "127.0.0.1", port: int = 8080, poll_s: float = 10.0, max_body_mb: float = 20.0,
          log_payloads: bool = False) -> None:
    """Load `name@alias` and serve it until interrupted (SIGINT / SIGTERM)."""
    import logging

    import uvicorn

    # MLflow's server logs a hint about its `instances` format at every refused request
    logging.getLogger("mlflow.pyfunc.scoring_server").setLevel(logging.ERROR)
    watcher = AliasWatcher(tracker, name, alias, poll_s)
    log = RequestLog(warehouse_path)
    app = build_app(watcher, log, int(max_body_mb * 1024 * 1024), log_payloads)
    print(f"serving {name}@{alias} (version {watcher.current.version}) on http://{host}:{port}: "
          f"POST /invocations, GET /health /version; alias checked every {poll_s:g} s; "
          f"requests logged to monitoring.served_requests", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
