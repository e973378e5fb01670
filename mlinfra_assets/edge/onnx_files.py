"""ONNX files of the network: fp32 and onnxruntime int8.

Both take the encoded inputs `numeric` (float32 [B, n_num], raw values: standardization is
inside the network) and `categorical` (int64 codes [B, n_cat]) and return `probabilities`.
`edge_onnx` builds the deliverable on top of the fp32 file (preprocessing inside).

The fp32 file of a `TabularMLP` is written op by op from its weights (`mlp_graph`): the graph
torch's dynamo exporter writes for it (Sub, Div, Gather per categorical, Concat, Gemm and
Relu per layer, Softmax; opset 20), in ~0.05 s instead of 1 s warm and ~4 s in a fresh
process (the exporter traces the module). Any other module, or a TabularMLP with a layer
other than Linear, ReLU and Dropout, goes through the dynamo exporter.
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


OPSET, IR_VERSION = 20, 10  # what torch's dynamo exporter writes (torch 2.13)


def mlp_graph(model: nn.Module, pre: Preprocessor):  # noqa: ANN201 - an onnx.ModelProto, or None
    """`ProbabilityModel(model)` as an ONNX model built from the weights, with a dynamic batch
    dimension; None when `model` is not a TabularMLP of Linear, ReLU and Dropout layers."""
    from onnx import TensorProto, helper, numpy_helper

    from mlinfra_assets.training.tabular_net import TabularMLP

    if not isinstance(model, TabularMLP) or not all(
            isinstance(m, nn.Linear | nn.ReLU | nn.Dropout) for m in model.mlp):
        return None
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    inits, nodes, parts = [], [], []

    def init(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(array, f"model.{name}"))
        return f"model.{name}"

    if pre.numeric:
        nodes.append(helper.make_node("Sub", ["numeric", init("mean", state["mean"])], ["sub"]))
        nodes.append(helper.make_node("Div", ["sub", init("std", state["std"])], ["div"]))
        parts.append("div")
    for j in range(len(model.embeddings)):
        column = init(f"categorical.{j}", np.array(j, dtype="int64"))
        nodes.append(helper.make_node("Gather", ["categorical", column], [f"select_{j}"], axis=1))
        weight = init(f"embeddings.{j}.weight", state[f"embeddings.{j}.weight"])
        nodes.append(helper.make_node("Gather", [weight, f"select_{j}"], [f"embedding_{j}"], axis=0))
        parts.append(f"embedding_{j}")
    x = parts[0]  # one part: no Concat, as the exporter writes it
    if len(parts) > 1:
        nodes.append(helper.make_node("Concat", parts, ["cat"], axis=1))
        x = "cat"
    for i, layer in enumerate(model.mlp):
        if isinstance(layer, nn.Linear):
            w, b = init(f"mlp.{i}.weight", state[f"mlp.{i}.weight"]), init(f"mlp.{i}.bias", state[f"mlp.{i}.bias"])
            nodes.append(helper.make_node("Gemm", [x, w, b], [f"linear_{i}"], alpha=1.0, beta=1.0, transA=0, transB=1))
            x = f"linear_{i}"
        elif isinstance(layer, nn.ReLU):
            nodes.append(helper.make_node("Relu", [x], [f"relu_{i}"]))
            x = f"relu_{i}"
    nodes.append(helper.make_node("Softmax", [x], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("numeric", TensorProto.FLOAT, ["batch", len(pre.numeric)]),
         helper.make_tensor_value_info("categorical", TensorProto.INT64, ["batch", len(pre.categorical)])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", model.mlp[-1].out_features])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                             producer_name="mlinfra")


def export_onnx(model: nn.Module, pre: Preprocessor, path: Path) -> None:
    """Write `ProbabilityModel(model)` with a dynamic batch dimension: `mlp_graph` for a
    TabularMLP, torch's dynamo exporter otherwise (`export_with_torch`)."""
    import onnx

    built = mlp_graph(model, pre)
    if built is None:
        export_with_torch(model, pre, path)
        return
    onnx.checker.check_model(built, full_check=True)
    onnx.save(built, str(path))


def export_with_torch(model: nn.Module, pre: Preprocessor, path: Path) -> None:
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
