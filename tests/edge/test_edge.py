"""Edge stage: variants of a quickly trained demo model, their files, fidelity and report."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import copy  # noqa: E402
import csv  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mlinfra_assets import keys  # noqa: E402
from mlinfra_assets.edge import build_stage, compress  # noqa: E402
from mlinfra_assets.edge.assets import REPORT_TABLE, VARIANTS_CHECK, holdout_sql  # noqa: E402
from mlinfra_assets.edge.compress import build_variants, publish, variant_names  # noqa: E402
from mlinfra_assets.edge.edge_onnx import raw_inputs  # noqa: E402
from mlinfra_assets.edge.evaluate import REPORT_COLUMNS, _judge, load_predictor  # noqa: E402
from mlinfra_assets.edge.prune import FinetuneSet, linear_sparsity, prune_and_finetune  # noqa: E402
from mlinfra_assets.holdout import holdout_predicate  # noqa: E402
from mlinfra_assets.resources import default_resources, replace_table_from_df  # noqa: E402
from mlinfra_assets.runner import run_assets  # noqa: E402
from mlinfra_assets.spec import Edge  # noqa: E402
from mlinfra_assets.training.batches import target_columns  # noqa: E402
from mlinfra_assets.training.model import Preprocessor, ScoringModel, TabularMLP  # noqa: E402
from tests.conftest import small_spec  # noqa: E402

pytestmark = pytest.mark.integration  # the stage on 8k demo rows, every variant built and timed: ~30 s CPU

ROWS = 8000


def training_rows(spec, warehouse):
    """Non-holdout raw rows with their oracle label, shaped like training.training_set (which it writes)."""
    df = warehouse.query_df(
        f"SELECT r.*, o.label FROM {spec.raw_table} r JOIN oracle.labels o ON o.txn_id = r.txn_id "
        f"WHERE NOT {holdout_predicate(spec, 'r.txn_id')} ORDER BY r.txn_id"
    )
    table = df[spec.numeric + spec.categorical].assign(_row_id=df["txn_id"].astype(str))
    for i, col in enumerate(target_columns(spec)):
        table[col] = (df["label"] == i).astype("float64")
    table = table.assign(_label=df["label"], _weight=1.0, _source="gold")
    with warehouse.connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS training")
        replace_table_from_df(con, "training.training_set", table)
    return df


def register_champion(resources, spec, scoring: ScoringModel) -> str:
    """Log `scoring` as a run's `scoring_model` artifacts, register it and point `champion` at it."""
    import tempfile

    import mlflow

    from mlinfra_assets.training import registry

    tracker = resources["mlflow"]
    experiment = tracker.activate()
    client = mlflow.MlflowClient(tracking_uri=tracker.store_uri(), registry_uri=tracker.store_uri())
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(experiment_id=experiment) as run:
        scoring.save(Path(tmp))
        mlflow.log_artifacts(tmp, artifact_path=registry.SCORING_ARTIFACT)
    if not client.search_registered_models(filter_string=f"name = '{spec.name}'"):
        client.create_registered_model(spec.name)
    version = client.create_model_version(spec.name, f"runs:/{run.info.run_id}/{registry.SCORING_ARTIFACT}",
                                          run_id=run.info.run_id).version
    registry.set_alias(tracker, spec.name, registry.CHAMPION, str(version))
    return str(version)


def train_quickly(spec, df) -> ScoringModel:
    """A short full-batch training loop on oracle labels of the non-holdout raw rows."""
    pre = Preprocessor.fit(df, spec.numeric, spec.categorical)
    num, cat = (torch.from_numpy(a) for a in pre.encode(df))
    y = torch.from_numpy(df["label"].to_numpy(dtype="int64"))
    torch.manual_seed(0)
    model = TabularMLP(pre, spec.n_classes, [64, 32])
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0]))
    model.train()
    for _ in range(150):
        opt.zero_grad()
        loss_fn(model(num, cat), y).backward()
        opt.step()
    return ScoringModel(model.eval(), pre, spec.classes, version="1")


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory):
    spec = small_spec(rows=ROWS)
    resources = default_resources(tmp_path_factory.mktemp("edge") / "data")
    run_assets(
        spec, resources,
        selection=[keys.source_key(spec), keys.SOURCE_ORACLE, keys.raw_key(spec), keys.QUARANTINE, keys.GOLD],
    )
    scoring = train_quickly(spec, training_rows(spec, resources["warehouse"]))
    assert register_champion(resources, spec, scoring) == "1"
    start = time.perf_counter()
    result = dg.materialize(build_stage(spec).assets, resources=resources)
    assert result.success
    return {"spec": spec, "resources": resources, "scoring": scoring, "result": result,
            "seconds": time.perf_counter() - start}


def _report(edge_run):
    con = duckdb.connect(edge_run["resources"]["warehouse"].path, read_only=True)
    try:
        return con.execute(f"SELECT * FROM {REPORT_TABLE}").df().set_index("variant")
    finally:
        con.close()


def test_report_has_every_variant_and_int8_is_smaller(edge_run):
    report = _report(edge_run)
    names = variant_names(edge_run["spec"].edge.prune_amounts)
    assert list(report.index) == names and (report["status"] == "ok").all(), report["reason"].to_dict()
    assert (report["metric_value"] == report["f1"]).all()  # two classes: the metric is the positive class's F1
    assert (report["size_bytes"] > 0).all() and (report["parameters"] > 0).all()
    for name in ("dynamic_int8", "int8_weight_only"):
        assert report.loc[name, "size_bytes"] < report.loc["fp32", "size_bytes"]
    assert report.loc["onnx_int8", "size_bytes"] < report.loc["onnx_fp32", "size_bytes"]
    for col in ("latency_b1_p50_ms", "latency_b1024_p50_ms"):
        assert (report[col] > 0).all()
    assert (report["latency_b1024_p99_ms"] >= report["latency_b1024_p50_ms"]).all()
    # the ratios are against fp32's own row, as the two assets report them (computed apart)
    fp32 = report.loc["fp32"]
    assert report["size_ratio"].tolist() == pytest.approx((fp32["size_bytes"] / report["size_bytes"]).tolist())
    assert report["speedup_b1024"].tolist() == pytest.approx(
        (fp32["latency_b1024_p50_ms"] / report["latency_b1024_p50_ms"]).tolist())
    for path in report["path"]:
        assert os.path.getsize(path) > 0
    events = edge_run["result"].get_asset_materialization_events()
    meta = next(e.materialization.metadata for e in events if e.asset_key == keys.COMPRESSION_REPORT)
    built = next(e.materialization.metadata for e in events if e.asset_key == keys.COMPRESSED_MODELS)
    assert built["fp32_size_bytes"].value == fp32["size_bytes"]
    for name in names[1:]:
        assert built[f"{name}_size_ratio"].value == pytest.approx(report.loc[name, "size_ratio"], rel=1e-3), name
        assert meta[f"{name}_size_ratio"].value == pytest.approx(report.loc[name, "size_ratio"], rel=1e-3), name
    assert meta["dagster/row_count"].value == len(names)
    assert meta["skipped_variants"].value == 0 and meta["failed_variants"].value == 0
    [check] = edge_run["result"].get_asset_check_evaluations()
    assert check.check_name == VARIANTS_CHECK and check.passed
    assert meta["metric"].value == "f1" and meta["model_version"].value == "1"
    for plot in ("size_vs_metric", "latency_vs_metric", "size_vs_speed"):
        assert "data:image/png;base64" in meta[plot].value
    print(f"edge assets ran in {edge_run['seconds']:.1f}s\n{report.drop(columns=['path', 'reason']).to_string()}")


def test_variants_keep_accuracy(edge_run):
    report = _report(edge_run)
    fp32 = report.loc["fp32"]
    assert fp32["f1"] > 0.3 and fp32["pr_auc"] > 0.3, "the quickly trained model should be useful"
    assert fp32["f1_delta"] == 0.0 and bool(fp32["deployable"])
    assert abs(report.loc["dynamic_int8", "f1"] - fp32["f1"]) <= 0.02
    for exact in ("onnx_fp32", "edge_onnx"):
        assert report.loc[exact, "max_abs_diff_vs_fp32"] < 1e-4
    assert report.loc["int8_weight_only", "max_abs_diff_vs_fp32"] < 0.05
    assert report.loc["onnx_int8", "max_abs_diff_vs_fp32"] < 0.1
    assert abs(report.loc["int8_weight_only", "f1"] - fp32["f1"]) <= 0.02
    # pruning really zeroes weights (its accuracy is the report's to show, not this test's)
    assert abs(report.loc["pruned_50", "sparsity"] - 0.5) < 0.01
    assert abs(report.loc["pruned_80", "sparsity"] - 0.8) < 0.01
    assert report.loc["pruned_80", "gzip_bytes"] < report.loc["fp32", "gzip_bytes"]
    assert (report.loc[["pruned_50", "pruned_80"], "pr_auc"] > 0.2).all()
    margin = edge_run["spec"].edge.f1_margin
    assert (report["deployable"] == (report["f1_delta"] >= -margin)).all()
    assert (report.loc[~report["deployable"], "reason"].str.contains("F1 drop")).all()


def test_core_round_trip_on_real_rows(edge_run, tmp_path):
    """Files written by build_variants score the real holdout like the in-memory model does."""
    spec, scoring = edge_run["spec"], edge_run["scoring"]
    rows = edge_run["resources"]["warehouse"].query_df(holdout_sql(spec))
    assert len(rows) > 100 and rows["_gold_label"].sum() > 0
    want = scoring.predict_proba(rows)
    no_prune = spec.edge.model_copy(update={"prune_amounts": []})
    variants, skipped, failed = build_variants(scoring, tmp_path / "v1", no_prune, None)
    assert skipped == {} and failed == {}
    num, cat = scoring.pre.encode(rows)
    inputs = {"encoded": {"numeric": num, "categorical": cat}, "raw": raw_inputs(rows, scoring.pre)}
    for name, tol in [("fp32", 1e-6), ("onnx_fp32", 1e-4), ("edge_onnx", 1e-4), ("int8_weight_only", 0.05),
                      ("dynamic_int8", 0.1), ("onnx_int8", 0.3)]:
        got = load_predictor(variants[name])(inputs[variants[name].inputs])
        assert got.shape == want.shape
        assert np.abs(got - want).max() < tol and np.abs(got - want).mean() < 0.005, name
    # rebuilding replaces the folder: nothing stale is left behind, one build is kept
    (tmp_path / "v1" / "stale.txt").write_text("x")
    first = (tmp_path / "v1").resolve()
    build_variants(scoring, tmp_path / "v1", no_prune, None)
    assert not (tmp_path / "v1" / "stale.txt").exists()
    assert (tmp_path / "v1").resolve() != first and not first.exists()
    assert [p.resolve() for p in (tmp_path / "v1.builds").iterdir()] == [(tmp_path / "v1").resolve()]
    assert sorted(p.name for p in (tmp_path / "v1").iterdir()) == sorted(
        ["architecture.json", "classes.json", "preprocessor.json", "fp32.pt", "dynamic_int8.pt", "int8_weight_only.pt",
         "onnx_fp32.onnx", "onnx_int8.onnx", "edge_model.onnx", "score.py"]
    )


def test_standalone_scorer_matches_torch_without_torch(edge_run, tmp_path):
    """score.py next to edge_model.onnx scores a CSV in a fresh interpreter that never imports torch or dagster."""
    spec, scoring = edge_run["spec"], edge_run["scoring"]
    rows = edge_run["resources"]["warehouse"].query_df(holdout_sql(spec)).head(500).copy()
    rows.loc[rows.index[:5], "amount"] = np.nan  # missing numerics: imputed inside the graph
    rows.loc[rows.index[5:10], "channel"] = "teleport"  # unseen category: the unknown code
    rows.loc[rows.index[10:12], "merchant_category"] = None
    want = scoring.predict_proba(rows)
    csv_in, csv_out = tmp_path / "rows.csv", tmp_path / "scores.csv"
    rows[[spec.id_column, *spec.numeric, *spec.categorical]].to_csv(csv_in, index=False)
    folder = Path(_report(edge_run).loc["edge_onnx", "path"]).parent
    probe = (
        "import runpy, sys; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__'); "
        "bad = sorted(m for m in ('torch', 'dagster', 'pandas') if m in sys.modules); "
        "assert not bad, f'the scorer imported {bad}'"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(folder / "score.py"), str(folder / "edge_model.onnx"),
         str(csv_in), str(csv_out), "--id-column", spec.id_column, "--batch-size", "128"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    with open(csv_out, newline="") as f:
        out = list(csv.DictReader(f))
    assert [r[spec.id_column] for r in out] == rows[spec.id_column].astype(str).tolist()
    got = np.array([[float(r[f"prob_{c}"]) for c in spec.classes] for r in out])
    assert np.abs(got - want).max() < 1e-4
    assert [r["predicted"] for r in out] == [spec.classes[i] for i in want.argmax(1)]


class Gate(torch.nn.Module):
    """A layer with its own parameters that no int8 or pruning variant knows."""

    def __init__(self, width: int):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


def test_variant_files_hold_tensors_only_and_a_network_they_cannot_rebuild_is_refused(edge_run, tmp_path):
    """Each torch variant file is a state dict that `torch.load(weights_only=True)` reads; a
    network the loader cannot rebuild from architecture.json (an extra layer) is refused, naming it."""
    scoring = edge_run["scoring"]
    variants, _, _ = build_variants(scoring, tmp_path / "ok", Edge(prune_amounts=[]), None)
    for name in ("fp32", "dynamic_int8", "int8_weight_only"):
        state = torch.load(variants[name].path, weights_only=True)
        assert isinstance(state, dict) and all(isinstance(k, str) for k in state), name
    model = copy.deepcopy(scoring.model)
    model.mlp.insert(0, Gate(model.mlp[0].in_features))
    odd = ScoringModel(model.eval(), scoring.pre, scoring.classes, version="odd")
    with pytest.raises(ValueError, match=r"model version odd cannot be saved so: .*mlp\.0\.gain"):
        build_variants(odd, tmp_path / "odd", edge_run["spec"].edge, None)
    assert not (tmp_path / "odd").exists()  # nothing published


def test_deployable_flag_and_reasons():
    rows = pd.DataFrame([
        {"variant": "fp32", "status": "ok", "reason": "", "size_bytes": 100, "latency_b1024_p50_ms": 2.0,
         "metric_value": 0.80, "f1": 0.80, "pr_auc": 0.9, "max_abs_diff_vs_fp32": 0.0},
        {"variant": "dynamic_int8", "status": "ok", "reason": "", "size_bytes": 25, "latency_b1024_p50_ms": 1.0,
         "metric_value": 0.79, "f1": 0.79, "pr_auc": 0.9, "max_abs_diff_vs_fp32": 0.02},
        {"variant": "pruned_80", "status": "ok", "reason": "", "size_bytes": 100, "latency_b1024_p50_ms": 2.0,
         "metric_value": 0.70, "f1": 0.70, "pr_auc": 0.8, "max_abs_diff_vs_fp32": 0.2},
        {"variant": "onnx_fp32", "status": "ok", "reason": "", "size_bytes": 90, "latency_b1024_p50_ms": 1.5,
         "metric_value": 0.80, "f1": 0.80, "pr_auc": 0.9, "max_abs_diff_vs_fp32": 1e-3},
        {"variant": "onnx_int8", "status": "skipped", "reason": "KeyError: x"},
    ])
    for col in REPORT_COLUMNS:
        rows[col] = rows.get(col, np.nan)
    report = _judge(rows.copy(), f1_margin=Edge().f1_margin).set_index("variant")
    assert report["deployable"].to_dict() == {
        "fp32": True, "dynamic_int8": True, "pruned_80": False, "onnx_fp32": False, "onnx_int8": False}
    assert report.loc["pruned_80", "reason"] == "not deployable: F1 drop 0.1000 > margin 0.02"
    # judged on the spec's metric, not the positive class's F1: the same drop in macro-F1 words
    other = rows.assign(metric_value=[0.9, 0.85, 0.89, 0.9, np.nan], f1=np.nan)
    judged = _judge(other, f1_margin=Edge().f1_margin, metric="macro_f1").set_index("variant")
    assert judged["deployable"].to_dict() == {
        "fp32": True, "dynamic_int8": False, "pruned_80": True, "onnx_fp32": False, "onnx_int8": False}
    assert judged.loc["dynamic_int8", "reason"] == "not deployable: macro-F1 drop 0.0500 > margin 0.02"
    assert report.loc["onnx_fp32", "reason"].startswith("not deployable: max |p - p_fp32| 1.00e-03")
    assert report.loc["onnx_int8", "reason"] == "skipped: KeyError: x"
    assert report.loc["dynamic_int8", "size_ratio"] == 4.0 and report.loc["dynamic_int8", "speedup_b1024"] == 2.0


def test_pruning_fine_tune_recovers_loss(edge_run):
    """The masks survive the fine-tune (exact sparsity) and the fine-tune lowers the training loss."""
    scoring, spec = edge_run["scoring"], edge_run["spec"]
    data = FinetuneSet.from_frame(
        edge_run["resources"]["warehouse"].query_df("SELECT * FROM training.training_set"), scoring.pre,
        target_columns(spec))

    def loss(model) -> float:
        with torch.no_grad():
            logits = model(torch.from_numpy(data.numeric), torch.from_numpy(data.categorical))
            return float(-(torch.from_numpy(data.targets) * torch.log_softmax(logits, 1)).sum(1).mean())

    raw = prune_and_finetune(scoring.model, 0.8, data, epochs=0)
    tuned = prune_and_finetune(scoring.model, 0.8, data, epochs=2, learning_rate=3e-3)
    assert linear_sparsity(raw) == pytest.approx(0.8, abs=0.005)
    assert linear_sparsity(tuned) == pytest.approx(0.8, abs=0.005)
    assert loss(tuned) < loss(raw)
    mixed = prune_and_finetune(scoring.model, 0.8, data, epochs=2, learning_rate=3e-3, mixup=0.4)  # as in training
    assert linear_sparsity(mixed) == pytest.approx(0.8, abs=0.005) and loss(mixed) < loss(raw)
    assert loss(mixed) != loss(tuned)
    assert linear_sparsity(scoring.model) < 0.01, "the source model is left untouched"
    # the decision is realigned: the pruned model flags as many training rows as the original
    aligned = prune_and_finetune(scoring.model, 0.8, data, epochs=2, positive=spec.positive_index)
    x = (torch.from_numpy(data.numeric), torch.from_numpy(data.categorical))
    with torch.no_grad():
        flags = [int((m(*x).argmax(1) == spec.positive_index).sum()) for m in (scoring.model.eval(), aligned)]
    assert abs(flags[1] - flags[0]) <= 2, flags
    with pytest.raises(ValueError, match="must be in"):
        prune_and_finetune(scoring.model, 1.0, data)


def test_without_a_champion_the_edge_stage_fails_naming_the_gate(tmp_path):
    spec = small_spec(rows=ROWS)
    resources = default_resources(tmp_path / "data")
    result = dg.materialize(build_stage(spec).assets, resources=resources, selection=[keys.COMPRESSED_MODELS],
                            raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.step_failure_data.error
    assert "has no champion" in str(error.cause or error) and "training/evaluation" in str(error.cause or error)


def test_dynamic_int8_keeps_heavy_tailed_inputs_resolved():
    """A few values far out must not cost every other input its resolution:
    the input Linear keeps fp32 activations (int8 weights), the hidden ones are dynamic int8."""
    import copy

    import torch
    from torch import nn

    from kernels import Int8Linear
    from mlinfra_assets.edge.compress import quantize_dynamic_int8

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 2)).eval()
    x = torch.randn(4096, 8)
    x[:4, 0] = 200.0  # a few extreme amounts set the per-tensor activation scale
    q = quantize_dynamic_int8(model)
    plain = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    assert isinstance(q[0], Int8Linear) and not isinstance(q[2], nn.Linear)  # hidden: packed int8
    with torch.no_grad():
        want = model[0](x)[4:]  # the input layer's output on the ordinary rows
        ours, theirs = ((layer(x)[4:] - want).abs().mean().item() for layer in (q[0], plain[0]))
        assert q(x).shape == (4096, 2)
    assert ours < theirs / 10, (ours, theirs)


class Killed(BaseException):
    """A kill at that instant: no `except Exception` in the build catches it."""


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_kill_while_building_or_switching_keeps_the_previous_build(edge_run, tmp_path, monkeypatch):
    """The folder is switched to a new build by one rename: killed while writing, or at the
    switch itself, the previous build is still whole; a leftover build goes with the next one."""
    scoring, spec = edge_run["scoring"], edge_run["spec"]
    no_prune = spec.edge.model_copy(update={"prune_amounts": []})
    folder = tmp_path / "7"
    build_variants(scoring, folder, no_prune, None)
    before = _files(folder)
    assert folder.is_symlink() and set(before) >= {"fp32.pt", "edge_model.onnx", "score.py"}

    with monkeypatch.context() as m:  # killed half-way: the torch files written, no ONNX file yet
        m.setattr(compress, "_onnx_variants", lambda *a, **kw: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            build_variants(scoring, folder, no_prune, None)
    assert _files(folder) == before
    with monkeypatch.context() as m:  # killed at the switch: the new build is complete, not yet published
        m.setattr(compress.os, "replace", lambda *a, **kw: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            build_variants(scoring, folder, no_prune, None)
    assert _files(folder) == before
    # a kill -9 leaves its half-written build behind: the next build removes it
    leftover = tmp_path / "7.builds" / "killed-build"
    leftover.mkdir()
    (leftover / "fp32.pt").write_bytes(b"half")
    build_variants(scoring, folder, no_prune, None)
    assert not leftover.exists() and [p.resolve() for p in (tmp_path / "7.builds").iterdir()] == [folder.resolve()]
    assert set(_files(folder)) == set(before)


def test_a_folder_from_before_builds_were_kept_is_replaced(tmp_path):
    folder, builds = tmp_path / "3", tmp_path / "3.builds"
    folder.mkdir()
    (folder / "fp32.pt").write_text("old")
    builds.mkdir()
    new = builds / "b1"
    new.mkdir()
    (new / "fp32.pt").write_text("new")
    publish(new, folder)
    assert folder.is_symlink() and (folder / "fp32.pt").read_text() == "new"
    assert [p.name for p in builds.iterdir()] == ["b1"]
    with pytest.raises(ValueError, match=r"is not in 3.builds/"):
        publish(tmp_path / "elsewhere", folder)


def test_an_unexpected_error_fails_the_variant_and_its_check(edge_run, tmp_path, monkeypatch):
    """A variant that breaks for a reason no model explains (a bug) is `failed`, not `skipped`:
    the report says so, it is never deployable, and the stage's check fails (ERROR); the other
    variants are still built."""
    spec = edge_run["spec"].model_copy(deep=True)
    spec.edge.prune_amounts = []
    data = tmp_path / "data"
    shutil.copytree(Path(edge_run["resources"]["data_dir"].root), data)
    resources = default_resources(data)

    def broken(model):
        raise RuntimeError("qconfig lost on the way")

    monkeypatch.setattr(compress, "quantize_dynamic_int8", broken)
    result = dg.materialize(build_stage(spec).assets, resources=resources, raise_on_error=False)
    assert result.success  # the check does not block: the report still measures the rest
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == VARIANTS_CHECK and not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert "dynamic_int8 failed: RuntimeError: qconfig lost on the way" in check.description
    value = result.asset_value(keys.COMPRESSED_MODELS)
    assert value["failed"] == {"dynamic_int8": "RuntimeError: qconfig lost on the way"}
    assert value["skipped"] == {} and "dynamic_int8" not in value["variants"]
    assert set(value["variants"]) == {"fp32", "int8_weight_only", "onnx_fp32", "onnx_int8", "edge_onnx"}
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    row = con.execute(f"SELECT status, reason, deployable FROM {REPORT_TABLE} WHERE variant = 'dynamic_int8'").fetchall()
    con.close()
    assert row == [("failed", "failed: RuntimeError: qconfig lost on the way", False)]


def test_deployable_portable_variants_are_registered_with_their_alias(edge_run):
    """edge_onnx and the pruned variants that pass the margin are versions of the spec's model with
    alias champion-<variant>, loading with MLflow alone and scoring as their files do; the others
    get no alias; a re-registration of the same build adds nothing; a variant no longer deployable
    loses its alias."""
    import mlflow

    from mlinfra_assets.edge.registration import NOT_PORTABLE, alias_of, register_variants
    from mlinfra_assets.training import registry
    from mlinfra_assets.training.dataset import raw_example

    spec, resources = edge_run["spec"], edge_run["resources"]
    tracker = resources["mlflow"]
    report = _report(edge_run).reset_index()
    events = edge_run["result"].get_asset_materialization_events()
    meta = next(e.materialization.metadata for e in events if e.asset_key == keys.COMPRESSION_REPORT)
    assert "champion-edge_onnx" in meta["registered_variants"].value
    portable = [v for v, ok in zip(report["variant"], report["deployable"], strict=True) if ok and v not in NOT_PORTABLE]
    assert "edge_onnx" in portable
    for variant in report["variant"]:
        version = registry.alias_version(tracker, spec.name, alias_of(variant))
        assert (version is not None) == (variant in portable), variant
    tracker.activate()
    rows = resources["warehouse"].query_df(holdout_sql(spec)).head(300)
    folder = Path(report.loc[report["variant"] == "edge_onnx", "path"].iloc[0]).parent
    pre = Preprocessor.from_json((folder / "preprocessor.json").read_text())
    for variant in portable:
        model = mlflow.pyfunc.load_model(f"models:/{spec.name}@{alias_of(variant)}")
        out = model.predict(rows[spec.feature_columns])
        assert list(out.columns) == [*spec.prob_columns, "predicted_class"]
        entry = report.set_index("variant").loc[variant]
        inputs = raw_inputs(rows, pre) if variant == "edge_onnx" else dict(zip(["numeric", "categorical"], pre.encode(rows), strict=True))
        want = load_predictor({"name": variant, "path": entry["path"], "kind": "onnx" if variant == "edge_onnx" else "torch",
                               "inputs": "raw" if variant == "edge_onnx" else "encoded", "size_bytes": 0, "gzip_bytes": 0,
                               "parameters": 0, "sparsity": 0.0, "runtime": ""})(inputs)
        assert abs(out[spec.prob_columns].to_numpy() - want).max() < 1e-5, variant
    client = mlflow.MlflowClient(tracking_uri=tracker.store_uri(), registry_uri=tracker.store_uri())
    champion_tags = client.get_run(client.get_model_version(spec.name, "1").run_id).data.tags
    for variant in portable:  # each variant says what it was built from, and the champion's data version
        mv = client.get_model_version(spec.name, registry.alias_version(tracker, spec.name, alias_of(variant)))
        assert mv.tags["edge_variant"] == variant and mv.tags["source_version"] == "1"
        assert client.get_run(mv.run_id).data.tags["data_version"] == champion_tags.get("data_version", "unknown")
    # `mlinfra model list`: a variant's row names the spec's metric and its figure on the holdout
    listing = {v["version"]: v for v in registry.list_versions(tracker, spec.name)}
    for variant in portable:
        row = listing[registry.alias_version(tracker, spec.name, alias_of(variant))]
        figure = report.set_index("variant").loc[variant, "metric_value"]
        assert row["edge_variant"] == variant and row["metric"] == spec.metric
        assert row["holdout_metric"] == pytest.approx(figure)
    before = len(client.search_model_versions(f"name = '{spec.name}'"))
    with resources["warehouse"].connect(read_only=True) as con:
        example = raw_example(con, spec)
    again = register_variants(tracker, spec, "1", folder, report, example)
    assert len(client.search_model_versions(f"name = '{spec.name}'")) == before
    assert set(again.loc[again["version"].notna(), "registered"]) == {"registered earlier for this build"}
    failed = report.assign(deployable=report["variant"] != "edge_onnx", reason="metric below the margin")
    dropped = register_variants(tracker, spec, "1", folder, failed, example).set_index("variant")
    assert registry.alias_version(tracker, spec.name, "champion-edge_onnx") is None
    assert dropped.loc["edge_onnx", "registered"].startswith("not deployable: metric below the margin; alias removed")
