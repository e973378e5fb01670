"""Measure compressed variants: CPU latency (one thread), the spec's metric (and for two
classes F1 / PR-AUC of the positive class) on the holdout, fidelity.

Each variant is loaded back from its file, so the figures are those of what ships. Inputs are
dicts of arrays with one batch dimension: `{"numeric", "categorical"}` for the encoded variants,
one array per raw column for `edge_onnx`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mlinfra_assets.edge.compress import Variant, load_variant_module
from mlinfra_assets.edge.onnx_files import ProbabilityModel, onnx_session

ONNX_PARITY_TOL = 1e-4
SCORE_BATCH = 8_192  # holdout rows per call when scoring a variant
EXACT = ("onnx_fp32", "edge_onnx")  # same arithmetic as fp32: must agree within ONNX_PARITY_TOL
REPORT_COLUMNS = [
    "variant", "status", "reason", "path", "runtime", "size_bytes", "gzip_bytes", "size_ratio", "parameters",
    "sparsity", "latency_b1_p50_ms", "latency_b1_p99_ms", "latency_b1024_p50_ms", "latency_b1024_p99_ms",
    "speedup_b1024", "metric_value", "metric_delta", "f1", "pr_auc", "f1_delta", "pr_auc_delta",
    "max_abs_diff_vs_fp32", "deployable",
]
NOT_JUDGED = "not judged: no labelled holdout rows (annotate the queue: mlinfra label)"
FIGURE_NAMES = {"f1": "F1", "macro_f1": "macro-F1", "accuracy": "accuracy"}
Inputs = dict[str, np.ndarray]
Predictor = Callable[[Inputs], np.ndarray]


def load_predictor(variant: Variant | dict) -> Predictor:
    """Load a variant file and return `predict(inputs) -> probabilities` (one CPU thread for ONNX)."""
    v = Variant(**variant) if isinstance(variant, dict) else variant
    if not Path(v.path).exists():
        raise FileNotFoundError(f"edge variant {v.name}: file {v.path} is missing; re-materialize edge/compressed_models")
    if v.kind == "onnx":
        session = onnx_session(v.path)
        names = [i.name for i in session.get_inputs()]
        return lambda x: session.run(None, {n: x[n] for n in names})[0]
    wrapper = ProbabilityModel(load_variant_module(Path(v.path), v.name)).eval()

    def predict(x: Inputs) -> np.ndarray:
        with torch.inference_mode():
            return wrapper(torch.from_numpy(x["numeric"]), torch.from_numpy(x["categorical"])).numpy()

    return predict


@contextmanager
def single_thread() -> Iterator[None]:
    """torch.set_num_threads(1) for the block, restoring the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def latency_ms(predict: Predictor, inputs: Inputs, batch: int, reps: int, warmup: int = 5) -> tuple[float, float]:
    """p50 and p99 wall time (ms) of one call on `batch` rows (rows repeated when fewer)."""
    rows = len(next(iter(inputs.values())))
    if rows == 0:
        raise ValueError("latency_ms: no rows to time")
    idx = np.resize(np.arange(rows), batch)
    x = {k: np.ascontiguousarray(v[idx]) for k, v in inputs.items()}
    for _ in range(warmup):
        predict(x)
    times = np.empty(reps)
    for i in range(reps):
        start = time.perf_counter()
        predict(x)
        times[i] = time.perf_counter() - start
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def predict_rows(predict: Predictor, inputs: Inputs, batch: int = SCORE_BATCH) -> np.ndarray:
    """Probabilities for every row, `batch` rows per call: the runtime's working memory (and
    onnxruntime's arena, which keeps its largest allocation) stays that of one batch, however
    large the holdout (100,000 rows at 1M demo rows: 1.1 GiB more in one call)."""
    rows = len(next(iter(inputs.values())))
    parts = [predict({k: v[i : i + batch] for k, v in inputs.items()}) for i in range(0, rows, batch)]
    return np.concatenate(parts) if parts else predict(inputs)


def f1_and_pr_auc(labels: np.ndarray, probs: np.ndarray, positive: int) -> tuple[float, float]:
    """F1 of the positive class (argmax predictions) and its average precision."""
    from sklearn.metrics import average_precision_score, f1_score

    truth = labels == positive
    f1 = float(f1_score(truth, probs.argmax(axis=1) == positive, zero_division=0.0))
    return f1, float(average_precision_score(truth, probs[:, positive]))


def evaluate_variants(
    variants: dict[str, Variant],
    inputs: dict[str, Inputs],
    labels: np.ndarray | None,
    positive: int,
    f1_margin: float,
    skipped: dict[str, str] | None = None,
    reps_b1: int = 300,
    reps_b1024: int = 40,
    metric: str = "f1",
    failed: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One report row per variant, measured against `fp32` on the same holdout rows.

    Parameters
    ----------
    variants : dict of str to Variant
        From `compress.build_variants`; must hold `fp32`.
    inputs : dict
        `{"encoded": {...}, "raw": {...}}`: the holdout rows in each variant's input form.
    labels : np.ndarray or None
        Class indexes of those rows (gold, or annotations); None: unlabelled rows, only size,
        latency and fidelity are measured and no variant is judged deployable (`NOT_JUDGED`).
    positive : int
        Index of the class F1 and PR-AUC are computed for (two classes).
    f1_margin : float
        A variant is deployable when its `metric` is at most this much below fp32's (the
        champion's; and the exact ONNX variants also agree with torch within `ONNX_PARITY_TOL`).
    skipped : dict of str to str, optional
        Variants that could not be built, with the reason: rows with status `skipped`.
    metric : str
        The spec's metric (`metrics.metric_score`): f1, macro_f1 or accuracy.
    failed : dict of str to str, optional
        Variants whose build failed for an unexpected reason, with the error: rows with status
        `failed` (never deployable).

    Returns
    -------
    pd.DataFrame
        `REPORT_COLUMNS`; latencies on one CPU thread (torch and onnxruntime).
    """
    if "fp32" not in variants:
        raise ValueError("evaluate_variants: the fp32 variant is the reference and is missing")
    from mlinfra_assets.training.metrics import metric_score

    if labels is not None and (len(labels) == 0 or (metric == "f1" and not (labels == positive).any())):
        raise ValueError(
            f"the holdout has no {'positive ' if metric == 'f1' else ''}label: the {metric} is undefined; "
            "use more rows or a larger training.holdout_percent"
        )
    probs, rows = {}, []
    with single_thread():
        for name in ["fp32", *[n for n in variants if n != "fp32"]]:
            v = variants[name]
            predict, x = load_predictor(v), inputs[v.inputs]
            probs[name] = predict_rows(predict, x)
            b1, b1024 = latency_ms(predict, x, 1, reps_b1), latency_ms(predict, x, 1024, reps_b1024)
            k = probs[name].shape[1]
            score = float("nan") if labels is None else metric_score(
                metric, labels, probs[name].argmax(axis=1), k, positive)
            f1, pr_auc = f1_and_pr_auc(labels, probs[name], positive) if labels is not None and k == 2 \
                else (float("nan"), float("nan"))
            rows.append({
                "variant": name, "status": "ok", "reason": "", "path": v.path, "runtime": v.runtime,
                "size_bytes": int(v.size_bytes), "gzip_bytes": int(v.gzip_bytes), "parameters": int(v.parameters),
                "sparsity": float(v.sparsity), "latency_b1_p50_ms": b1[0], "latency_b1_p99_ms": b1[1],
                "latency_b1024_p50_ms": b1024[0], "latency_b1024_p99_ms": b1024[1], "metric_value": score,
                "f1": f1, "pr_auc": pr_auc,
                "max_abs_diff_vs_fp32": float(np.abs(probs[name] - probs["fp32"]).max()),
            })
    rows += [{"variant": n, "status": "skipped", "reason": r} for n, r in (skipped or {}).items()]
    rows += [{"variant": n, "status": "failed", "reason": r} for n, r in (failed or {}).items()]
    return _judge(pd.DataFrame(rows), f1_margin, metric)


def _judge(report: pd.DataFrame, f1_margin: float, metric: str = "f1") -> pd.DataFrame:
    """Ratios against fp32 (the champion), deltas, and the deployable flag with its reason:
    the `metric` drop vs fp32 at most `f1_margin` (edge.f1_margin)."""
    ref = report.set_index("variant").loc["fp32"]
    report["size_ratio"] = ref["size_bytes"] / report["size_bytes"]
    report["speedup_b1024"] = ref["latency_b1024_p50_ms"] / report["latency_b1024_p50_ms"]
    report["metric_delta"] = report["metric_value"] - ref["metric_value"]
    report["f1_delta"] = report["f1"] - ref["f1"]
    report["pr_auc_delta"] = report["pr_auc"] - ref["pr_auc"]
    ok = report["status"] == "ok"
    judged = report["metric_value"].notna()
    f1_ok = report["metric_delta"] >= -f1_margin
    parity_ok = ~report["variant"].isin(EXACT) | (report["max_abs_diff_vs_fp32"] <= ONNX_PARITY_TOL)
    report["deployable"] = ok & f1_ok & parity_ok
    drop = ok & judged & ~f1_ok
    name = FIGURE_NAMES.get(metric, metric)
    report.loc[drop, "reason"] = [f"not deployable: {name} drop {-d:.4f} > margin {f1_margin}"
                                  for d in report.loc[drop, "metric_delta"]]
    report.loc[ok & ~judged, "reason"] = NOT_JUDGED
    off = ok & f1_ok & ~parity_ok
    report.loc[off, "reason"] = [f"not deployable: max |p - p_fp32| {d:.2e} > {ONNX_PARITY_TOL}"
                                 for d in report.loc[off, "max_abs_diff_vs_fp32"]]
    report.loc[~ok, "reason"] = report.loc[~ok, "status"] + ": " + report.loc[~ok, "reason"]
    return report[REPORT_COLUMNS]
