"""ONNX files of the network: fp32 export (torch dynamo exporter) and onnxruntime int8.

Both take the encoded inputs `numeric` (float32 [B, n_num], raw values: standardization is
inside the network) and `categorical` (int64 codes [B, n_cat]) and return `probabilities`.
`edge_onnx` builds the deliverable on top of the fp32 file (preprocessing inside).
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlinfra_assets.training.model import Preprocessor


class ProbabilityModel(nn.Module):
    """(numeric float32 [B, n_num], categorical int64 [B, n_cat]) -> class probabilities."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(numeric, categorical), dim=1)


def sample_inputs(pre: Preprocessor, rows: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Random encoded inputs in the model's domain (numerics around the training statistics)."""
    rng = np.random.default_rng(seed)
    num = rng.normal(pre.means, np.asarray(pre.stds) * 2, size=(rows, len(pre.numeric))).astype("float32")
    cat = np.stack(
        [rng.integers(0, len(pre.vocab[c]) + 1, rows) for c in pre.categorical], axis=1
    ).astype("int64") if pre.categorical else np.zeros((rows, 0), dtype="int64")
    return num, cat


def export_onnx(model: nn.Module, pre: Preprocessor, path: Path) -> None:
    """Export `ProbabilityModel(model)` with the dynamo exporter and a dynamic batch dimension."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    num, cat = sample_inputs(pre, 4)
    batch = torch.export.Dim("batch", min=1)
    wrapper = ProbabilityModel(copy.deepcopy(model)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "axis name batch ... shares the same constraints": intended
        torch.onnx.export(
            wrapper,
            (torch.from_numpy(num), torch.from_numpy(cat)),
            str(path),
            dynamo=True,
            input_names=["numeric", "categorical"],
            output_names=["probabilities"],
            dynamic_shapes={"numeric": {0: batch}, "categorical": {0: batch}},
            external_data=False,
            verbose=False,
        )
    strip_debug_info(path)


def strip_debug_info(path: Path) -> None:
    """Drop the exporter's per-node provenance (fx node, stack, class path) and value_info:
    half the file of a small network, and nothing a runtime reads."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.value_info[:]
    onnx.save(model, str(path))


def quantize_onnx_int8(source: Path, path: Path) -> None:
    """onnxruntime dynamic quantization: int8 weights of MatMul/Gemm, activations quantized at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("root").setLevel(logging.ERROR)  # ORT logs a hint about pre-processing per call
    quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])


def onnx_stats(path: Path) -> tuple[int, float]:
    """Elements of the graph's initializers, and the share of zeros among its 2-D ones."""
    import onnx
    from onnx import numpy_helper

    tensors = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer]
    matrices = [t for t in tensors if t.ndim == 2]
    total = sum(t.size for t in matrices)
    zeros = sum(int((t == 0).sum()) for t in matrices)
    return int(sum(t.size for t in tensors)), float(zeros / total) if total else 0.0


def onnx_session(path: str):  # noqa: ANN201 - onnxruntime.InferenceSession, imported late
    """An onnxruntime CPU session on one thread (the report's latency setting)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
