"""`mlinfra serve`: a registered model's alias over HTTP, reloaded when the alias moves.

The protocol is MLflow's scoring server's (`POST /invocations` with `dataframe_split`,
`dataframe_records` or `instances` JSON, CSV or Parquet; `GET /ping`, `/health`, `/version`),
and its request parsing and schema enforcement are reused (`mlflow.pyfunc.scoring_server`):
a client written for `mlflow models serve` works unchanged, and a request that does not fit the
model's signature is refused by MLflow's own checks, which name the column. MLServer was the
alternative; it would add a second server stack and its own model settings for one model, and
neither reloading an alias nor logging to the warehouse comes with it. What this module adds
around MLflow's pieces: the alias watcher (a new version is loaded beside the old one, then
swapped in; requests never wait for a load), `/version` with the model version, run and data
version, a body size limit, short error messages (MLflow's repeat the whole input), and a
record of every request in `monitoring.served_requests` (`request_log.py`).
"""

import asyncio
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
            raise ServeError(f"registered model {self.name!r} has no alias {self.alias!r} in "
                             f"{self.tracker.tracking_uri}: run `mlinfra run` first, or pick a version with "
                             f"`mlinfra model promote`")
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


class _Counting:
    """The model as MLflow's `invocations` calls it, counting the rows it was given."""

    def __init__(self, model: Any):
        self.model, self.metadata, self.rows = model, model.metadata, None

    def predict(self, data: Any, params: dict | None = None) -> Any:
        self.rows = len(data)
        return self.model.predict(data, params=params)


def concise(message: str) -> str:
    """MLflow's error without the input it repeats ("Failed to predict data '<all rows>' ... Error: X",
    "... Input: <the body>")."""
    return message.rsplit("Error: ", 1)[-1].split("\nInput:")[0].strip()[:1000]


def mistyped_column(body: bytes, content_type: str, schema: Any) -> str | None:
    """For a request whose values did not parse as the model's types (MLflow's message names the
    value, not the column): the first numeric column holding a value that is not a number."""
    import io
    import json

    import numpy as np
    import pandas as pd

    try:
        if content_type.startswith("text/csv"):
            frame = pd.read_csv(io.BytesIO(body), dtype=str)
        else:
            parsed = json.loads(body)
            if "dataframe_split" in parsed:
                split = parsed["dataframe_split"]
                frame = pd.DataFrame(split["data"], columns=split.get("columns"))
            else:
                frame = pd.DataFrame(next(parsed[k] for k in ("dataframe_records", "instances", "inputs") if k in parsed))
    except Exception:  # noqa: BLE001 - not parseable at all: MLflow's own message stands
        return None
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
    from mlflow.pyfunc.scoring_server import invocations

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
        counting, payload, error = _Counting(served.model), None, None
        content_type = request.headers.get("content-type") or "application/json"
        try:
            body = await read_body(request, max_body_bytes)
            payload = body.decode("utf-8", "replace") if log_payloads else None
            result = await asyncio.to_thread(invocations, body, content_type, counting, served.input_schema)
            response = Response(result.response, status_code=result.status, media_type=result.mimetype)
            error = None if result.status < 400 else concise(result.response)
        except Refused as exc:
            error, response = exc.message, JSONResponse({"message": exc.message}, status_code=exc.status)
        except MlflowException as exc:
            error = concise(exc.message)
            if exc.error_code == "BAD_REQUEST" and "could not convert" in error:
                error = mistyped_column(body, content_type, served.input_schema) or error
            response = JSONResponse({"error_code": exc.error_code, "message": error},
                                    status_code=exc.get_http_status_code())
        log.record(ServedRequest(datetime.now(), watcher.name, watcher.alias, served.version, counting.rows,
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
