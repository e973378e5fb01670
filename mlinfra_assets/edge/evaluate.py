"""Measure compressed variants: CPU latency (one thread), F1 / PR-AUC on the holdout, fidelity.

Each variant is loaded back from its file, so the figures are those of what ships.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from mlinfra_assets.edge.compress import RUNTIMES, Predictor, Variant, load_predictor

ONNX_PARITY_TOL = 1e-4
REPORT_COLUMNS = [
    "variant", "path", "runtime", "size_bytes", "parameters",
    "latency_b1_p50_ms", "latency_b1_p99_ms", "latency_b1024_p50_ms", "latency_b1024_p99_ms",
    "f1", "pr_auc", "f1_delta", "max_abs_diff_vs_fp32", "deployable",
]


@contextmanager
def single_thread() -> Iterator[None]:
    """torch.set_num_threads(1) for the block, restoring the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def latency_ms(predict: Predictor, num: np.ndarray, cat: np.ndarray, batch: int, reps: int,
               warmup: int = 5) -> tuple[float, float]:
    """p50 and p99 wall time (ms) of one call on `batch` rows (rows repeated when fewer)."""
    if len(num) == 0:
        raise ValueError("latency_ms: no rows to time")
    idx = np.resize(np.arange(len(num)), batch)
    x_num, x_cat = np.ascontiguousarray(num[idx]), np.ascontiguousarray(cat[idx])
    for _ in range(warmup):
        predict(x_num, x_cat)
    times = np.empty(reps)
    for i in range(reps):
        start = time.perf_counter()
        predict(x_num, x_cat)
        times[i] = time.perf_counter() - start
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def f1_and_pr_auc(labels: np.ndarray, probs: np.ndarray, positive: int) -> tuple[float, float]:
    """F1 of the positive class (argmax predictions) and its average precision."""
    from sklearn.metrics import average_precision_score, f1_score

    truth = labels == positive
    f1 = float(f1_score(truth, probs.argmax(axis=1) == positive, zero_division=0.0))
    return f1, float(average_precision_score(truth, probs[:, positive]))


def evaluate_variants(
    variants: dict[str, Variant],
    num: np.ndarray,
    cat: np.ndarray,
    labels: np.ndarray,
    positive: int,
    f1_margin: float,
    reps_b1: int = 300,
    reps_b1024: int = 40,
) -> pd.DataFrame:
    """One report row per variant, measured against `fp32` on the given encoded holdout rows.

    Parameters
    ----------
    variants : dict of str to Variant
        From `compress.build_variants`; must hold `fp32`.
    num, cat : np.ndarray
        Encoded holdout rows (float32 numerics, int64 codes).
    labels : np.ndarray
        Gold class indexes of those rows.
    positive : int
        Index of the class F1 and PR-AUC are computed for.
    f1_margin : float
        A variant is deployable when its F1 is at most this much below fp32's (and an ONNX
        variant also agrees with torch within `ONNX_PARITY_TOL`).

    Returns
    -------
    pd.DataFrame
        `REPORT_COLUMNS`; latencies on one CPU thread (torch and onnxruntime).
    """
    if "fp32" not in variants:
        raise ValueError("evaluate_variants: the fp32 variant is the reference and is missing")
    if len(labels) == 0 or not (labels == positive).any():
        raise ValueError(
            "the holdout has no positive gold label: F1/PR-AUC are undefined; use more rows "
            "or a larger training.holdout_percent"
        )
    probs = {}
    rows = []
    with single_thread():
        for name in ["fp32", *[n for n in variants if n != "fp32"]]:
            v = variants[name]
            predict = load_predictor(v)
            probs[name] = predict(num, cat)
            b1 = latency_ms(predict, num, cat, 1, reps_b1)
            b1024 = latency_ms(predict, num, cat, 1024, reps_b1024)
            f1, pr_auc = f1_and_pr_auc(labels, probs[name], positive)
            rows.append({
                "variant": name, "path": v.path, "runtime": RUNTIMES.get(name, v.kind),
                "size_bytes": int(v.size_bytes), "parameters": int(v.parameters),
                "latency_b1_p50_ms": b1[0], "latency_b1_p99_ms": b1[1],
                "latency_b1024_p50_ms": b1024[0], "latency_b1024_p99_ms": b1024[1],
                "f1": f1, "pr_auc": pr_auc,
                "max_abs_diff_vs_fp32": float(np.abs(probs[name] - probs["fp32"]).max()),
            })
    report = pd.DataFrame(rows)
    report["f1_delta"] = report["f1"] - report.loc[report["variant"] == "fp32", "f1"].iloc[0]
    parity_ok = (report["variant"] != "onnx_fp32") | (report["max_abs_diff_vs_fp32"] <= ONNX_PARITY_TOL)
    report["deployable"] = (report["f1_delta"] >= -f1_margin) & parity_ok
    return report[REPORT_COLUMNS]
