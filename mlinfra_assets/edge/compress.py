"""Compressed variants of a scoring model, written as files an edge device can load.

Variants: `fp32` (the trained network), `dynamic_int8` (torch dynamic quantization of
the Linear layers: int8 weights, activations quantized on the fly), `int8_weight_only`
(`kernels.Int8Linear`: int8 weights with per-channel scales, fused ReLU; the Triton
kernel on CUDA, the torch path on CPU) and `onnx_fp32` (ONNX export of the network plus
softmax, dynamic batch, run by onnxruntime).
"""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlinfra_assets.training.model import Preprocessor, ScoringModel

VARIANTS = ("fp32", "dynamic_int8", "int8_weight_only", "onnx_fp32")
RUNTIMES = {
    "fp32": "torch-cpu",
    "dynamic_int8": "torch-cpu (fbgemm/x86 int8)",
    "int8_weight_only": "torch-cpu (Triton kernel on CUDA)",
    "onnx_fp32": "onnxruntime-cpu",
}
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Variant:
    """One compressed model file and what it holds."""

    name: str
    path: str
    kind: str  # "torch" or "onnx"
    size_bytes: int
    parameters: int

    def to_dict(self) -> dict:
        return asdict(self)


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


def count_parameters(module: nn.Module) -> int:
    """Elements of every stored tensor (parameters, buffers, packed int8 weights)."""
    total = sum(t.numel() for t in module.state_dict().values() if isinstance(t, torch.Tensor))
    for m in module.modules():  # dynamic-quantized Linear keeps (weight, bias) in packed params
        if hasattr(m, "_packed_params") and hasattr(m, "weight"):
            total += m.weight().numel() + (m.bias().numel() if m.bias() is not None else 0)
    return int(total)


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """torch.ao dynamic quantization of every nn.Linear (int8 weights, per-tensor)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)


def export_onnx(model: nn.Module, pre: Preprocessor, path: Path) -> None:
    """Export `ProbabilityModel(model)` with the dynamo exporter and a dynamic batch dimension."""
    import logging

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    num, cat = sample_inputs(pre, 4)
    batch = torch.export.Dim("batch", min=1)
    wrapper = ProbabilityModel(copy.deepcopy(model)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "axis name batch ... shares the same constraints": intended
        _export(wrapper, num, cat, batch, path)


def _export(wrapper: nn.Module, num: np.ndarray, cat: np.ndarray, batch: object, path: Path) -> None:
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


def build_variants(scoring: ScoringModel, folder: Path) -> dict[str, Variant]:
    """Write every variant (and the preprocessing) into `folder`, replacing it atomically.

    Parameters
    ----------
    scoring : ScoringModel
        The trained model with its preprocessor and classes.
    folder : Path
        Target folder; built next to it first, then swapped in.

    Returns
    -------
    dict of str to Variant
        Variant name -> file, kind, size on disk and stored tensor elements.
    """
    fp32 = copy.deepcopy(scoring.model).cpu().eval()
    tmp = folder.with_name(folder.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "preprocessor.json").write_text(scoring.pre.to_json())
    (tmp / "classes.json").write_text(json.dumps(scoring.classes))
    from kernels import swap_linears

    modules = {
        "fp32": fp32,
        "dynamic_int8": quantize_dynamic_int8(fp32),
        "int8_weight_only": swap_linears(copy.deepcopy(fp32)).eval(),
    }
    for name, module in modules.items():
        torch.save(module, tmp / f"{name}.pt")
    export_onnx(fp32, scoring.pre, tmp / "onnx_fp32.onnx")
    if folder.exists():
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old)
    else:
        tmp.rename(folder)
    variants = {
        name: Variant(name, str(folder / f"{name}.pt"), "torch", (folder / f"{name}.pt").stat().st_size,
                      count_parameters(module))
        for name, module in modules.items()
    }
    onnx_path = folder / "onnx_fp32.onnx"
    variants["onnx_fp32"] = Variant("onnx_fp32", str(onnx_path), "onnx", onnx_path.stat().st_size,
                                    onnx_parameters(onnx_path))
    return variants


def onnx_parameters(path: Path) -> int:
    """Elements of the ONNX graph's initializers."""
    import onnx

    graph = onnx.load(str(path)).graph
    return int(sum(int(np.prod(t.dims)) for t in graph.initializer))


def load_predictor(variant: Variant | dict) -> Predictor:
    """Load a variant file and return `predict(numeric, categorical) -> probabilities`."""
    v = Variant(**variant) if isinstance(variant, dict) else variant
    if not Path(v.path).exists():
        raise FileNotFoundError(f"edge variant {v.name}: file {v.path} is missing; re-materialize edge/compressed_models")
    if v.kind == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(v.path, opts, providers=["CPUExecutionProvider"])
        return lambda num, cat: session.run(None, {"numeric": num, "categorical": cat})[0]
    wrapper = ProbabilityModel(torch.load(v.path, weights_only=False, map_location="cpu")).eval()

    def predict(num: np.ndarray, cat: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return wrapper(torch.from_numpy(num), torch.from_numpy(cat)).numpy()

    return predict


def onnx_parity(variants: dict[str, Variant], pre: Preprocessor, rows: int = 2048) -> float:
    """Max |p_onnx - p_torch| of the ONNX file vs the fp32 file on sampled inputs."""
    num, cat = sample_inputs(pre, rows, seed=11)
    ref = load_predictor(variants["fp32"])(num, cat)
    got = load_predictor(variants["onnx_fp32"])(num, cat)
    return float(np.abs(ref - got).max())
