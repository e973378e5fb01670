"""The platform on tables it has never seen: scikit-learn's breast cancer (binary, gold in a
separate file, a feature named `weight`), wine (3 classes, no id, a feature named `label`),
iris (string class names, no gold: the annotators' answers are the holdout), digits (10
classes, the LF module `mlinfra init` drafted) and an hourly-timestamped Parquet file; each from
`mlinfra init` and an LF module only, through the `mlinfra` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from tests.own_data.datasets import CASES, Case

pytestmark = pytest.mark.integration
MLINFRA = [sys.executable, "-m", "mlinfra_assets.cli"]


def mlinfra(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MLINFRA_SPEC", "MLINFRA_DATA_DIR",
                                                            "MLINFRA_WAREHOUSE", "MLFLOW_TRACKING_URI")}
    done = subprocess.run([*MLINFRA, *args], capture_output=True, text=True, env=env, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"mlinfra {' '.join(args)} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def init_case(case: Case, root: Path) -> Path:
    """`mlinfra init`, then what the user does by hand: their LF module, where their gold is."""
    out = root / case.name
    done = mlinfra("init", str(case.data), *case.init_args, "--out", str(out))
    assert "next:" in done.stdout and f"mlinfra run --spec {out / 'spec.yaml'}" in done.stdout
    spec_path = out / "spec.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    assert len(spec["classes"]) == case.classes
    if case.lfs is not None:
        (out / "lfs.py").write_text(case.lfs)
    if case.gold == "file":  # the labels arrive apart from the features, joined on the id
        df = pd.read_csv(case.data)
        df[[spec["id_column"], "target"]].rename(columns={"target": "diagnosis"}).to_csv(case.gold_file, index=False)
        df.drop(columns=["target"]).to_csv(case.data, index=False)
        spec["gold"] = {"path": os.path.relpath(case.gold_file, out), "column": "diagnosis"}
    elif case.gold == "none":  # no labels at all: the file without its label column, no gold
        df = pd.read_csv(case.data)
        df.drop(columns=[spec["gold"]["column"]]).to_csv(case.data, index=False)
        del spec["gold"]
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec_path


def status(spec_path: Path) -> dict:
    done = mlinfra("status", "--spec", str(spec_path), "--json")
    assert done.stderr == "", done.stderr[-2000:]  # no library warning for the user to wade through
    return json.loads(done.stdout)


def answer_queue(case: Case, spec_path: Path) -> int:
    """The annotators answer the open queue by class name, in a CSV dropped into the inbox."""
    warehouse = spec_path.parent / "data" / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        queued = con.execute("SELECT CAST(row_id AS VARCHAR) AS row_id FROM labeling.annotation_queue").df()
    finally:
        con.close()
    truth = pd.read_csv(case.gold_file, dtype=str)
    answers = queued.merge(truth, on="row_id").assign(annotator="botanist")
    inbox = spec_path.parent / "data" / "annotations" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    answers[["row_id", "label", "annotator"]].to_csv(inbox / "answers.csv", index=False)
    # one annotator's file names a class the spec does not know: refused alone, with the reason
    answers.head(3).assign(label="tulip")[["row_id", "label", "annotator"]].to_csv(inbox / "tulips.csv", index=False)
    return len(answers)


@pytest.mark.parametrize("case_run", list(CASES), indirect=True)
def test_whole_graph_on_a_new_table(case_run: tuple) -> None:
    """`case_run` (tests/conftest.py): `mlinfra init`, the LF module, `mlinfra run`."""
    case, spec_path, run = case_run
    name = case.name
    assert "succeeded" in run.stdout, run.stdout[-3000:]
    decisions = run.stdout[run.stdout.index("== decisions of this run"):]
    assert "weak labels:" in decisions and "gate:" in decisions and "synthetic rows:" in decisions, decisions
    state = status(spec_path)
    assert state["spec"]["metric"] == ("f1" if case.classes == 2 else "macro_f1")
    if case.gold == "none":
        assert state["champion"]["evaluation"].get("holdout_rows", 0) in (0, None) or "not evaluated" in json.dumps(state)
        answered = answer_queue(case, spec_path)
        assert answered > 0
        before = state["champion"]["version"]
        run = mlinfra("run", "--spec", str(spec_path))
        assert "succeeded" in run.stdout, run.stdout[-3000:]
        reasons = list((spec_path.parent / "data" / "annotations" / "rejected").glob("tulips*.reason"))
        assert reasons and "tulip" in reasons[0].read_text(), reasons
        state = status(spec_path)
        decisions = run.stdout[run.stdout.index("== decisions of this run"):].splitlines()
        champion_line = next(line for line in decisions if line.startswith("  champion:"))
        if state["champion"]["version"] != before:  # the gate's shadow, promoted within the run
            assert champion_line.endswith(
                f"; then shadow version {state['champion']['version']} became champion (shadow: above)"), decisions
    evaluation = state["champion"]["evaluation"]
    metric = state["spec"]["metric"]
    assert state["champion"]["version"] is not None, state
    print(name, json.dumps({k: evaluation.get(k) for k in sorted(evaluation)}, default=str)[:2000])
    assert evaluation["metric"] == metric, evaluation
    assert evaluation["champion_metric_value"] > evaluation["baseline_majority"], evaluation
    assert evaluation["champion_beats_majority"] is True, evaluation
    assert state["label_model"].get("label_model_choice") in ("label_model", "majority_vote"), state["label_model"]
    for group, stage in state["stages"].items():
        assert stage["state"] in ("materialized", "checks failed"), (group, stage["state"])
