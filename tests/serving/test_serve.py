"""`mlinfra serve` as a client meets it: a real server on 127.0.0.1 over the wine run (3 classes,
numeric labels) answers MLflow's request formats, refuses bad requests with a 4xx naming the
problem and keeps serving, follows the champion alias when `mlinfra model promote` moves it,
and logs every request to monitoring.served_requests."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlinfra_assets.spec import load_spec
from tests.own_data.test_matrix import MLINFRA, mlinfra
from tests.servers import free_port, http_ok, serve

pytestmark = pytest.mark.integration
POLL_S = 1.0


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("case_run", ["wine"], indirect=True)
def test_serve_answers_refuses_follows_the_alias_and_logs(case_run, tmp_path):
    _, spec_path, _ = case_run
    case = tmp_path / "case"  # a copy: promoting here must not move the matrix test's champion
    shutil.copytree(spec_path.parent, case)
    spec_file = case / "spec.yaml"
    spec = load_spec(spec_file)
    warehouse = case / "data" / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    scored = con.execute(f"SELECT r.*, p.* EXCLUDE (_partition) FROM monitoring.predictions p JOIN "
                         f"{spec.raw_table} r ON r.{spec.id_column} = p._row_id ORDER BY p._row_id").df()
    con.close()
    features, probs = spec.feature_columns, spec.prob_columns

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLINFRA_")) and k != "DAGSTER_HOME"}
    cmd = [*MLINFRA, "serve", "--spec", str(spec_file), "--port", str(port), "--poll-s", str(POLL_S)]
    with serve(cmd, tmp_path / "serve.log", http_ok(f"{url}/health"), 180, env=env):
        first = get(f"{url}/version")
        assert first["model"] == spec.name and first["alias"] == "champion" and first["version"] == "1"
        assert first["run_id"] and first["data_version"] not in ("", "unknown")

        # one row, split format: the champion's probabilities as the platform scored them
        one = scored.head(1)
        status, out = post(url, json.dumps({"dataframe_split": json.loads(one[features].to_json(orient="split", index=False))}).encode())
        assert status == 200, out
        row = out["predictions"][0]
        assert list(row) == [*probs, "predicted_class"]
        assert np.allclose([row[c] for c in probs], one[probs].to_numpy()[0], atol=1e-6)
        assert row["predicted_class"] == spec.classes[int(one["_prediction"].iloc[0])]

        # 10,000 rows, records format
        many = scored.sample(10_000, replace=True, random_state=0)
        status, out = post(url, json.dumps({"dataframe_records": json.loads(many[features].to_json(orient="records"))}).encode())
        assert status == 200, out
        got = pd.DataFrame(out["predictions"])
        assert len(got) == 10_000 and np.allclose(got[probs].to_numpy(), many[probs].to_numpy(), atol=1e-6)

        # bad requests: a 4xx naming the problem, and the server keeps serving
        missing = one[features].drop(columns=[features[0]])
        wrong = one[features].astype({features[1]: object}).assign(**{features[1]: "not a number"})
        bad = {
            "missing column": (json.dumps({"dataframe_split": json.loads(missing.to_json(orient="split", index=False))}).encode(), features[0]),
            "wrong type": (json.dumps({"dataframe_split": json.loads(wrong.to_json(orient="split", index=False))}).encode(), features[1]),
            "empty body": (b"", "empty request body"),
            "50 MB body": (b"x" * (50 * 1024 * 1024), "over the limit"),
        }
        for what, (body, named) in bad.items():
            status, out = post(url, body)
            assert 400 <= status < 500, (what, status, out)
            assert named in out.get("message", ""), (what, out)
            assert get(f"{url}/health")["status"] == "ok", what

        # a rollback / promotion moves the alias: the server answers with it within a poll
        import mlflow

        tracking = f"sqlite:///{case / 'data' / 'mlflow.db'}"
        before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(tracking)  # create_model_version resolves the source with the global client
        mlflow.set_registry_uri(tracking)
        try:
            client = mlflow.MlflowClient()
            v1 = client.get_model_version(spec.name, "1")
            # a new version of the champion's model (the run registered edge variants too: its number varies)
            second = str(client.create_model_version(spec.name, v1.source, v1.run_id).version)
        finally:
            mlflow.set_tracking_uri(before[0])
            mlflow.set_registry_uri(before[1])
        asked = time.monotonic()
        mlinfra("model", "promote", second, "--spec", str(spec_file))
        promoted = time.monotonic()
        deadline = promoted + POLL_S + 30  # a poll, then loading the version (~1 s here)
        while get(f"{url}/version")["version"] != second:
            assert time.monotonic() < deadline, "the server did not follow the alias"
            time.sleep(0.2)
        print(f"served version {second} {time.monotonic() - promoted:.1f} s after `mlinfra model promote` returned "
              f"({promoted - asked:.1f} s after it started; poll every {POLL_S:g} s)")
        status, out = post(url, json.dumps({"dataframe_split": json.loads(one[features].to_json(orient="split", index=False))}).encode())
        assert status == 200

    # stopped (SIGTERM): every request is in the table, without its payload
    con = duckdb.connect(str(warehouse), read_only=True)
    log = con.execute("SELECT model_version, rows, status, error, payload FROM monitoring.served_requests "
                      "ORDER BY served_at").df()
    con.close()
    assert list(log["status"]) == [200, 200, 400, 400, 400, 413, 200]
    assert list(log["model_version"]) == ["1"] * 6 + [second]
    assert list(log["rows"].iloc[[0, 1, 6]]) == [1, 10_000, 1]
    assert log["payload"].isna().all() and log["error"].iloc[2:6].notna().all()
