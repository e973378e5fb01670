"""Compressed variants of a scoring model, written as files an edge device can load.

`fp32` (the trained network), `dynamic_int8` (torch dynamic quantization of the hidden
Linears, int8 weights with fp32 activations for the input Linear),
`int8_weight_only` (`kernels.Int8Linear`: int8 weights, per-channel scales, fused ReLU;
Triton on CUDA, torch on CPU), `pruned_<pct>` (global magnitude pruning + short fine-tune),
`onnx_fp32` / `onnx_int8` (onnxruntime; int8 by its dynamic quantization) and `edge_onnx`
(the deliverable: raw columns in, preprocessing inside, with `score.py` next to it).

A variant the model cannot take (a layer the torch variants do not compress, no rows to
fine-tune on, an op the ONNX exporter lacks) is skipped, with the reason. A variant that
fails for any other reason is a failure, not a skip: it is reported apart (`failed`), and the
edge stage's check fails on it; the other variants are still built.

The folder `<name>` is a link to one complete build in `<name>.builds/`: each build is
written there in full, then the link is switched by one atomic rename, and only then are
older builds removed; a crash at any point leaves the previous build in place.
"""

from __future__ import annotations

import copy
import gzip
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from mlinfra_assets.edge import onnx_files
from mlinfra_assets.edge.prune import FinetuneSet, linear_sparsity, prune_and_finetune
from mlinfra_assets.training.model import ARCHITECTURE, ScoringModel, TabularMLP
from mlinfra_assets.training.tabular_net import build_net

SCORER = Path(__file__).parent / "standalone" / "score.py"
EDGE_FILE = "edge_model.onnx"
BUILDS_SUFFIX = ".builds"  # `<folder>.builds/` holds the builds the link `<folder>` points to
LOG = logging.getLogger(__name__)
# layers with parameters that every variant keeps as they are (fp32) without harm
KEPT_LAYERS = (nn.Embedding, nn.LayerNorm, nn.BatchNorm1d)
RUNTIMES = {
    "fp32": "torch-cpu", "dynamic_int8": "torch-cpu (fbgemm/x86 int8)",
    "int8_weight_only": "torch-cpu (Triton kernel on CUDA)", "onnx_fp32": "onnxruntime-cpu",
    "onnx_int8": "onnxruntime-cpu (int8)", "edge_onnx": "onnxruntime-cpu (raw columns)",
}


@dataclass
class Variant:
    """One model file and what it holds. `inputs`: "encoded" (numeric, categorical) or "raw" columns."""

    name: str
    path: str
    kind: str  # "torch" or "onnx"
    inputs: str
    size_bytes: int
    gzip_bytes: int
    parameters: int
    sparsity: float
    runtime: str

    def to_dict(self) -> dict:
        return asdict(self)


def variant_names(prune_amounts: list[float]) -> list[str]:
    """Every variant, in report order."""
    pruned = [f"pruned_{round(a * 100)}" for a in prune_amounts]
    return ["fp32", "dynamic_int8", "int8_weight_only", *pruned, "onnx_fp32", "onnx_int8", "edge_onnx"]


def count_parameters(module: nn.Module) -> int:
    """Elements of every stored tensor (parameters, buffers, packed int8 weights)."""
    total = sum(t.numel() for t in module.state_dict().values() if isinstance(t, torch.Tensor))
    for m in module.modules():  # dynamic-quantized Linear keeps (weight, bias) in packed params
        if hasattr(m, "_packed_params") and hasattr(m, "weight"):
            total += m.weight().numel() + (m.bias().numel() if m.bias() is not None else 0)
    return int(total)


def unsupported_layers(model: nn.Module) -> list[str]:
    """Types of the layers with parameters that the torch variants neither compress nor keep."""
    return sorted({
        type(m).__name__ for m in model.modules()
        if any(True for _ in m.parameters(recurse=False)) and not isinstance(m, (nn.Linear, *KEPT_LAYERS))
    })


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """int8 weights for every nn.Linear; int8 activations wherever they are well scaled.

    The hidden Linears get torch.ao dynamic quantization (int8 weights, activations
    quantized per batch with one scale). The input Linear (the first one: it reads the
    standardized raw features) keeps int8 weights with per-channel scales but fp32
    activations (`kernels.Int8Linear`): heavy-tailed features (an amount 40 standard
    deviations out) set one per-tensor activation scale so coarse that typical values lose
    their resolution; on the demo that alone moved probabilities by up to 0.16 and cost about
    0.01 F1, while the layer is a small share of the weights and of the time.
    """
    from kernels import Int8Linear

    out = copy.deepcopy(model)
    linears = [name for name, m in out.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        return out
    first = linears[0]
    if len(linears) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated for torchao
            out = torch.ao.quantization.quantize_dynamic(
                out, set(linears[1:]), dtype=torch.qint8, inplace=True
            )
    _set_module(out, first, Int8Linear.from_linear(model.get_submodule(first)).eval())
    return out.eval()


def structure(name: str) -> Callable[[nn.Module], nn.Module]:
    """How variant `name`'s modules are laid out from the fp32 network (its weights come from its
    state dict): the quantized variants swap their Linears; fp32 and pruned keep the network's."""
    from kernels import swap_linears

    if name == "dynamic_int8":
        return quantize_dynamic_int8
    if name == "int8_weight_only":
        return lambda m: swap_linears(copy.deepcopy(m)).eval()
    return lambda m: m


def load_variant_module(path: Path, name: str) -> nn.Module:
    """A torch variant from its build folder: the network rebuilt from the folder's JSON files, laid
    out as the variant (`structure`), then its state dict read with `weights_only=True`.

    Raises
    ------
    ValueError
        for a build written before variants were state dicts (a pickled module): re-materialize.
    """
    folder = path.parent
    if not (folder / ARCHITECTURE).exists():
        raise ValueError(f"edge variant {name}: {path} is a pickled module written by an earlier mlinfra, not "
                         "loaded (unpickling runs code); re-materialize edge/compressed_models")
    network, _, _ = build_net(folder)
    module = structure(name)(network)
    module.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    return module.eval()


def _torch_makers(edge: object, finetune: FinetuneSet | None, positive: int | None
                  ) -> dict[str, Callable[[nn.Module], nn.Module]]:
    makers: dict[str, Callable[[nn.Module], nn.Module]] = {
        "dynamic_int8": structure("dynamic_int8"),
        "int8_weight_only": structure("int8_weight_only"),
    }
    for amount in edge.prune_amounts:
        makers[f"pruned_{round(amount * 100)}"] = lambda m, a=amount: prune_and_finetune(
            m, a, finetune, edge.finetune_epochs, edge.finetune_learning_rate, seed=edge.seed, positive=positive,
            mixup=edge.finetune_mixup)
    return makers


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"[:300]


def _failure(name: str, error: Exception) -> str:
    """The one-line reason of an unexpected failure; the traceback goes to the log."""
    LOG.error("edge variant %s failed", name, exc_info=error)
    return _reason(error)


def build_variants(scoring: ScoringModel, folder: Path, edge: object, finetune: FinetuneSet | None,
                   positive: str | None = None
                   ) -> tuple[dict[str, Variant], dict[str, str], dict[str, str]]:
    """Write every variant the model allows (and the preprocessing) as one build, then make
    `folder` point at it with one atomic rename (`publish`).

    Parameters
    ----------
    scoring : ScoringModel
        The trained model with its preprocessor and classes.
    folder : Path
        The link to the build; the build itself lives in `<folder>.builds/`.
    edge : spec.Edge
        `prune_amounts`, `finetune_epochs`, `finetune_learning_rate`, `finetune_mixup`, `seed`.
    finetune : FinetuneSet or None
        Training rows for the pruned variants' fine-tune; None or empty skips them.
    positive : str, optional
        The positive class, written into the edge file's metadata; with two classes the pruned
        variants' decision on it is realigned with the original's.

    Returns
    -------
    (dict of str to Variant, dict of str to str, dict of str to str)
        Variants by name; skipped variant -> the reason (the model cannot take it); failed
        variant -> the error (anything else: a failure the edge stage's check reports).
    """
    fp32 = copy.deepcopy(scoring.model).cpu().eval()
    builds = folder.with_name(folder.name + BUILDS_SUFFIX)
    builds.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%dT%H%M%S-"), dir=builds))
    try:
        modules, files, skipped, failed = _write_build(fp32, scoring, tmp, edge, finetune, positive)
        publish(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {name: _variant(name, folder / path.name, kind, inputs, modules.get(name))
            for name, (path, kind, inputs) in files.items()}, skipped, failed


def rebuild_problem(network: nn.Module, scoring: ScoringModel) -> str | None:
    """Why `network` cannot be saved as a state dict that `load_variant_module` rebuilds (None: it can)."""
    if not isinstance(network, TabularMLP):
        return f"it is a {type(network).__name__}, not a TabularMLP"
    rebuilt = TabularMLP(scoring.pre, len(scoring.classes), **network.architecture).state_dict()
    mine = network.state_dict()
    extra, missing = sorted(set(mine) - set(rebuilt)), sorted(set(rebuilt) - set(mine))
    shapes = [k for k in set(mine) & set(rebuilt) if mine[k].shape != rebuilt[k].shape]
    if extra or missing or shapes:
        return (f"its layers differ from those its architecture.json rebuilds (extra {extra[:4]}, missing "
                f"{missing[:4]}, other shapes {sorted(shapes)[:4]})")
    return None


def _write_build(fp32: nn.Module, scoring: ScoringModel, tmp: Path, edge: object, finetune: FinetuneSet | None,
                 positive: str | None) -> tuple[dict, dict, dict[str, str], dict[str, str]]:
    problem = rebuild_problem(fp32, scoring)
    if problem is not None:
        raise ValueError(f"edge variants are state dicts that load into the platform's TabularMLP; model version "
                         f"{scoring.version} cannot be saved so: {problem}. Train it with the platform's trainer")
    (tmp / "preprocessor.json").write_text(scoring.pre.to_json())
    (tmp / "classes.json").write_text(json.dumps(scoring.classes))
    modules, skipped, failed = {"fp32": fp32}, {}, {}
    odd = unsupported_layers(fp32)
    # two classes: realign the positive class's decision after pruning; never one of three or more
    index = scoring.classes.index(positive) if positive in scoring.classes and len(scoring.classes) == 2 else None
    for name, make in _torch_makers(edge, finetune, index).items():
        if odd:
            skipped[name] = f"layers {', '.join(odd)} are not supported (compresses nn.Linear only)"
        elif name.startswith("pruned") and (finetune is None or not len(finetune)):
            skipped[name] = "no training rows to fine-tune on: materialize training/training_set"
        else:
            try:
                modules[name] = make(fp32)
            except Exception as error:  # noqa: BLE001 - unexpected: reported as a failure, the rest still built
                failed[name] = _failure(name, error)
    (tmp / ARCHITECTURE).write_text(json.dumps(fp32.architecture))
    for name, module in modules.items():  # tensors only: loading never runs pickled code
        torch.save(module.state_dict(), tmp / f"{name}.pt")
    files = {name: (tmp / f"{name}.pt", "torch", "encoded") for name in modules}
    files |= _onnx_variants(fp32, scoring, tmp, skipped, failed, positive)
    return modules, files, skipped, failed


def _onnx_variants(fp32: nn.Module, scoring: ScoringModel, tmp: Path, skipped: dict[str, str],
                   failed: dict[str, str], positive: str | None) -> dict[str, tuple[Path, str, str]]:
    steps = [
        ("onnx_fp32", "onnx_fp32.onnx", "encoded", lambda p: onnx_files.export_onnx(fp32, scoring.pre, p)),
        ("onnx_int8", "onnx_int8.onnx", "encoded", lambda p: onnx_files.quantize_onnx_int8(tmp / "onnx_fp32.onnx", p)),
        ("edge_onnx", EDGE_FILE, "raw", lambda p: _edge_file(tmp / "onnx_fp32.onnx", scoring, positive, p)),
    ]
    out = {}
    for name, file, inputs, write in steps:
        if "onnx_fp32" in skipped:
            skipped[name] = skipped.get(name, f"needs onnx_fp32, which was skipped: {skipped['onnx_fp32']}")
            continue
        if "onnx_fp32" in failed:
            skipped[name] = f"needs onnx_fp32, which failed: {failed['onnx_fp32']}"
            continue
        try:
            write(tmp / file)
            out[name] = (tmp / file, "onnx", inputs)
        except torch.onnx.OnnxExporterError as error:  # an op the exporter lacks: the model cannot take it
            skipped[name] = _reason(error)
        except Exception as error:  # noqa: BLE001 - unexpected: reported as a failure, the rest still built
            failed[name] = _failure(name, error)
    return out


def _edge_file(network: Path, scoring: ScoringModel, positive: str | None, path: Path) -> None:
    from mlinfra_assets.edge.edge_onnx import build_edge_onnx

    build_edge_onnx(network, scoring.pre, scoring.classes, positive, path, scoring.version)
    shutil.copy(SCORER, path.with_name("score.py"))


def publish(build: Path, folder: Path) -> None:
    """Point `folder` at the complete `build` (a folder in `<folder>.builds/`) with one atomic
    rename of a relative symbolic link, then remove every other build there.

    Readers of `folder` see the previous build or this one, never a mix or nothing. A folder
    written before builds were kept (a real directory) is moved into `<folder>.builds/` first,
    once. A crash before the rename leaves the previous build in place; the build it was
    writing is removed by the next `publish`.
    """
    builds = build.parent
    if builds != folder.with_name(folder.name + BUILDS_SUFFIX):
        raise ValueError(f"build {build} is not in {folder.name}{BUILDS_SUFFIX}/ next to {folder}")
    link = folder.with_name(f".{folder.name}.next")
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.join(builds.name, build.name), link, target_is_directory=True)
    if folder.is_dir() and not folder.is_symlink():
        folder.rename(Path(tempfile.mkdtemp(prefix="unversioned-", dir=builds)))
    os.replace(link, folder)  # the one step that switches readers to the new build
    for old in builds.iterdir():
        if old.name != build.name:
            shutil.rmtree(old, ignore_errors=True)


def _variant(name: str, path: Path, kind: str, inputs: str, module: nn.Module | None) -> Variant:
    data = path.read_bytes()
    if kind == "onnx":
        parameters, sparsity = onnx_files.onnx_stats(path)
    else:
        parameters, sparsity = count_parameters(module), linear_sparsity(module)
    return Variant(name, str(path), kind, inputs, len(data), len(gzip.compress(data, 9)), parameters,
                   sparsity, RUNTIMES.get(name, "torch-cpu (pruned, dense)"))
