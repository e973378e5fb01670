"""Edge stage: variants of a quickly trained demo model, their files, fidelity and report."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import time  # noqa: E402

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mlinfra_assets import keys  # noqa: E402
from mlinfra_assets.edge import build_stage  # noqa: E402
from mlinfra_assets.edge.assets import REPORT_TABLE, holdout_sql  # noqa: E402
from mlinfra_assets.edge.compress import VARIANTS, build_variants, load_predictor  # noqa: E402
from mlinfra_assets.holdout import holdout_predicate  # noqa: E402
from mlinfra_assets.resources import default_resources  # noqa: E402
from mlinfra_assets.runner import run_assets  # noqa: E402
from mlinfra_assets.training.model import Preprocessor, ScoringModel, TabularMLP  # noqa: E402
from tests.conftest import small_spec  # noqa: E402

ROWS = 8000


def train_quickly(spec, warehouse) -> ScoringModel:
    """A short full-batch training loop on oracle labels of the non-holdout raw rows."""
    df = warehouse.query_df(
        f"SELECT r.*, o.label FROM {spec.raw_table} r JOIN oracle.labels o ON o.txn_id = r.txn_id "
        f"WHERE NOT {holdout_predicate(spec, 'r.txn_id')} ORDER BY r.txn_id"
    )
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
        spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE, keys.raw_key(spec), keys.QUARANTINE]
    )
    scoring = train_quickly(spec, resources["warehouse"])
    folder = resources["data_dir"].path("models", "run-1", mkdir=False)
    scoring.save(folder)
    model = {"name": spec.name, "version": "1", "model_uri": f"models:/{spec.name}/1", "run_id": "run-1",
             "path": str(folder)}

    @dg.asset(key=keys.MODEL)
    def model_stub() -> dict:
        return model

    start = time.perf_counter()
    result = dg.materialize([model_stub, *build_stage(spec).assets], resources=resources)
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
    assert sorted(report.index) == sorted(VARIANTS)
    assert (report["size_bytes"] > 0).all() and (report["parameters"] > 0).all()
    for name in ("dynamic_int8", "int8_weight_only"):
        assert report.loc[name, "size_bytes"] < report.loc["fp32", "size_bytes"]
    for col in ("latency_b1_p50_ms", "latency_b1024_p50_ms"):
        assert (report[col] > 0).all()
    assert (report["latency_b1024_p99_ms"] >= report["latency_b1024_p50_ms"]).all()
    for path in report["path"]:
        assert os.path.getsize(path) > 0
    events = edge_run["result"].get_asset_materialization_events()
    meta = next(e.materialization.metadata for e in events if e.asset_key == keys.COMPRESSION_REPORT)
    assert meta["dagster/row_count"].value == len(VARIANTS)
    assert "data:image/png;base64" in meta["size_vs_f1"].value
    print(f"edge assets ran in {edge_run['seconds']:.1f}s\n{report.drop(columns='path').to_string()}")


def test_variants_keep_accuracy(edge_run):
    report = _report(edge_run)
    fp32 = report.loc["fp32"]
    assert fp32["f1"] > 0.3 and fp32["pr_auc"] > 0.3, "the quickly trained model should be useful"
    assert fp32["f1_delta"] == 0.0 and bool(fp32["deployable"])
    assert abs(report.loc["dynamic_int8", "f1"] - fp32["f1"]) <= 0.02
    assert report.loc["onnx_fp32", "max_abs_diff_vs_fp32"] < 1e-4
    assert report.loc["int8_weight_only", "max_abs_diff_vs_fp32"] < 0.05
    assert abs(report.loc["int8_weight_only", "f1"] - fp32["f1"]) <= 0.02
    margin = edge_run["spec"].edge.f1_margin
    assert (report["deployable"] == (report["f1_delta"] >= -margin)).all()


def test_core_round_trip_on_real_rows(edge_run, tmp_path):
    """Files written by build_variants score the real holdout like the in-memory model does."""
    spec, scoring = edge_run["spec"], edge_run["scoring"]
    rows = edge_run["resources"]["warehouse"].query_df(holdout_sql(spec))
    assert len(rows) > 100 and rows["_gold_label"].sum() > 0
    want = scoring.predict_proba(rows)
    variants = build_variants(scoring, tmp_path / "v1")
    num, cat = scoring.pre.encode(rows)
    for name, tol in [("fp32", 1e-6), ("onnx_fp32", 1e-4), ("int8_weight_only", 0.05), ("dynamic_int8", 0.3)]:
        got = load_predictor(variants[name])(num, cat)
        assert got.shape == want.shape
        assert np.abs(got - want).max() < tol and np.abs(got - want).mean() < 0.005, name
    # rebuilding replaces the folder: nothing stale is left behind
    (tmp_path / "v1" / "stale.txt").write_text("x")
    build_variants(scoring, tmp_path / "v1")
    assert not (tmp_path / "v1" / "stale.txt").exists()
    assert sorted(p.name for p in (tmp_path / "v1").iterdir()) == sorted(
        ["classes.json", "preprocessor.json", "fp32.pt", "dynamic_int8.pt", "int8_weight_only.pt", "onnx_fp32.onnx"]
    )


def test_missing_model_file_fails_with_its_path(tmp_path):
    spec = small_spec(rows=ROWS)
    resources = default_resources(tmp_path / "data")

    @dg.asset(key=keys.MODEL)
    def model_stub() -> dict:
        return {"name": spec.name, "version": "1", "path": str(tmp_path / "nowhere")}

    result = dg.materialize(
        [model_stub, *build_stage(spec).assets], resources=resources,
        selection=[keys.MODEL, keys.COMPRESSED_MODELS], raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "nowhere holds no model.pt" in str(failure.step_failure_data.error.cause or failure.step_failure_data.error)
