"""The whole small MLP forward in one Triton kernel: three linear layers, ReLU, softmax.

For small batches the TabularMLP is launch-bound: six kernels (three GEMMs, two ReLUs,
a softmax) for a few thousand multiply-adds. This kernel keeps a block of rows in
registers through all three layers and writes only the probabilities. Weights may be
int8 (with per-output-channel scales, as `kernels.int8_linear.quantize_weight` makes
them) or fp32/fp16 (scales omitted); widths up to `MAX_WIDTH`.

`fused_mlp` dispatches: Triton for CUDA tensors (or under the interpreter with
`force_triton=True`), the torch reference `fused_mlp_reference` otherwise.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.int8_linear import interpreting

MAX_WIDTH = 256  # padded layer width kept in registers; wider layers: use int8_linear per layer
MIN_DOT = 16  # tl.dot needs every dimension >= 16
GPU_CONFIGS = [
    triton.Config({"BLOCK_M": bm}, num_warps=w, num_stages=1)
    for bm, w in [(16, 2), (16, 4), (32, 4), (64, 4), (64, 8), (128, 8)]
]
INTERPRET_CONFIG = triton.Config({"BLOCK_M": 64}, num_warps=4, num_stages=1)
Layer = tuple[torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"]  # weight [N, K], scales [N], bias [N]


@triton.jit
def _dense(x, w_ptr, s_ptr, b_ptr, K, N, KP: tl.constexpr, NP: tl.constexpr,
           RELU: tl.constexpr, IEEE: tl.constexpr):
    """relu?((x @ w.T) * s + b) for one register tile x [BLOCK_M, KP]; w is [N, K] row-major."""
    k = tl.arange(0, KP)
    n = tl.arange(0, NP)
    w = tl.load(w_ptr + n[None, :] * K + k[:, None], mask=(k[:, None] < K) & (n[None, :] < N), other=0)
    if IEEE:
        acc = tl.dot(x, w.to(x.dtype), input_precision="ieee")
    else:
        acc = tl.dot(x, w.to(x.dtype))
    acc = acc * tl.load(s_ptr + n, mask=n < N, other=0.0).to(tl.float32)[None, :]
    acc = acc + tl.load(b_ptr + n, mask=n < N, other=0.0).to(tl.float32)[None, :]
    if RELU:
        acc = tl.maximum(acc, 0.0)
    return acc


@triton.jit
def _fused_mlp_kernel(
    x_ptr, w1_ptr, s1_ptr, b1_ptr, w2_ptr, s2_ptr, b2_ptr, w3_ptr, s3_ptr, b3_ptr, y_ptr,
    M, K0, H1, H2, C, stride_xm, stride_ym,
    SOFTMAX: tl.constexpr, IEEE: tl.constexpr,
    K0P: tl.constexpr, H1P: tl.constexpr, H2P: tl.constexpr, CP: tl.constexpr, BLOCK_M: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_m = rows < M
    k0 = tl.arange(0, K0P)
    x = tl.load(x_ptr + rows[:, None] * stride_xm + k0[None, :], mask=mask_m[:, None] & (k0[None, :] < K0), other=0.0)
    h = _dense(x, w1_ptr, s1_ptr, b1_ptr, K0, H1, K0P, H1P, True, IEEE)
    h = _dense(h.to(x.dtype), w2_ptr, s2_ptr, b2_ptr, H1, H2, H1P, H2P, True, IEEE)
    out = _dense(h.to(x.dtype), w3_ptr, s3_ptr, b3_ptr, H2, C, H2P, CP, False, IEEE)
    c = tl.arange(0, CP)
    if SOFTMAX:
        out = tl.where(c[None, :] < C, out, float("-inf"))
        out = tl.exp(out - tl.max(out, axis=1)[:, None])
        out = out / tl.sum(out, axis=1)[:, None]
    tl.store(y_ptr + rows[:, None] * stride_ym + c[None, :], out.to(y_ptr.dtype.element_ty),
             mask=mask_m[:, None] & (c[None, :] < C))


def _prune(configs: list[triton.Config], named_args: dict, **kwargs: object) -> list[triton.Config]:
    return [INTERPRET_CONFIG] if interpreting() else [c for c in configs if c is not INTERPRET_CONFIG]


_fused_mlp_autotuned = triton.autotune(
    configs=[*GPU_CONFIGS, INTERPRET_CONFIG],
    key=["M", "K0", "H1", "H2", "C"],
    prune_configs_by={"early_config_prune": _prune},
)(_fused_mlp_kernel)


def fused_mlp_reference(x: torch.Tensor, layers: list[Layer], softmax: bool = True) -> torch.Tensor:
    """Torch reference: ReLU between layers, dequantized weights, fp32 math, softmax at the end."""
    h = x.to(torch.float32)
    for i, (w, s, b) in enumerate(layers):
        w = w.to(torch.float32) * (s.to(torch.float32)[:, None] if s is not None else 1.0)
        h = h @ w.T + (b.to(torch.float32) if b is not None else 0.0)
        if i + 1 < len(layers):
            h = torch.relu(h)
    return (torch.softmax(h, dim=1) if softmax else h).to(x.dtype)


def _pad(width: int) -> int:
    return max(MIN_DOT, triton.next_power_of_2(width))


def check_layers(x: torch.Tensor, layers: list[Layer]) -> None:
    """Raise before launch when the kernel cannot take these tensors (naming what is wrong)."""
    if x.dim() != 2 or x.dtype not in (torch.float32, torch.float16):
        raise TypeError(f"fused_mlp: x must be a 2-D float32/float16 tensor, got {x.dtype} {tuple(x.shape)}")
    if len(layers) != 3:
        raise ValueError(f"fused_mlp: the kernel fuses exactly 3 linear layers (2 hidden), got {len(layers)}")
    width = x.shape[1]
    for i, (w, s, b) in enumerate(layers, start=1):
        if w.dim() != 2 or w.dtype not in (torch.int8, torch.float16, torch.float32):
            raise TypeError(f"fused_mlp: layer {i} weight must be 2-D int8/float16/float32, got {w.dtype} {tuple(w.shape)}")
        if w.shape[1] != width:
            raise ValueError(f"fused_mlp: layer {i} expects {w.shape[1]} inputs, the previous layer gives {width}")
        if w.dtype == torch.int8 and s is None:
            raise ValueError(f"fused_mlp: layer {i} has int8 weights but no scales")
        for name, t in (("scales", s), ("bias", b)):
            if t is not None and tuple(t.shape) != (w.shape[0],):
                raise ValueError(f"fused_mlp: layer {i} {name} has shape {tuple(t.shape)}, expected ({w.shape[0]},)")
        for t in (w, s, b):
            if t is not None and t.device != x.device:
                raise ValueError(f"fused_mlp: layer {i} is on {t.device}, x on {x.device}: move both to one device")
        if _pad(w.shape[1]) > MAX_WIDTH or _pad(w.shape[0]) > MAX_WIDTH:
            raise ValueError(
                f"fused_mlp: layer {i} is {w.shape[1]}->{w.shape[0]}, wider than the kernel's {MAX_WIDTH}: "
                "run it layer by layer with kernels.int8_linear"
            )
        width = w.shape[0]


def fused_mlp_triton(x: torch.Tensor, layers: list[Layer], softmax: bool = True, block_m: int | None = None) -> torch.Tensor:
    """Run the fused kernel; `block_m` bypasses the autotuner."""
    check_layers(x, layers)
    x = x.contiguous()
    args = []
    for w, s, b in layers:
        n = w.shape[0]
        ones = torch.ones(n, dtype=torch.float32, device=x.device)
        args += [w.contiguous(), ones if s is None else s.contiguous(),
                 torch.zeros_like(ones) if b is None else b.contiguous()]
    m, k0 = x.shape
    h1, h2, c = (w.shape[0] for w, _, _ in layers)
    y = torch.empty((m, c), dtype=x.dtype, device=x.device)
    if m == 0:
        return y
    pads = {"K0P": _pad(k0), "H1P": _pad(h1), "H2P": _pad(h2), "CP": _pad(c)}
    call = (x, *args, y, m, k0, h1, h2, c, x.stride(0), y.stride(0))
    flags = {"SOFTMAX": softmax, "IEEE": x.dtype == torch.float32, **pads}
    if block_m is not None:
        _fused_mlp_kernel[(triton.cdiv(m, block_m),)](*call, **flags, BLOCK_M=block_m)
    else:
        _fused_mlp_autotuned[lambda meta: (triton.cdiv(m, meta["BLOCK_M"]),)](*call, **flags)
    return y


def fused_mlp(x: torch.Tensor, layers: list[Layer], softmax: bool = True, *, force_triton: bool = False,
              block_m: int | None = None) -> torch.Tensor:
    """Probabilities (or logits) of a 3-layer ReLU MLP: Triton on CUDA, torch on CPU.

    Parameters
    ----------
    x : torch.Tensor
        Input features [M, K0], float32 or float16.
    layers : list of (weight, scales, bias)
        Three layers; weight [N, K] int8 (scales required) or float; scales, bias [N] or None.
    softmax : bool
        Softmax over the last layer (else logits).
    force_triton : bool
        Run the kernel on CPU tensors; needs TRITON_INTERPRET=1.
    block_m : int, optional
        Rows per program instead of autotuning.
    """
    if x.is_cuda:
        return fused_mlp_triton(x, layers, softmax, block_m)
    if force_triton:
        if not interpreting():
            raise RuntimeError("fused_mlp(force_triton=True) on CPU tensors needs TRITON_INTERPRET=1 before importing triton")
        return fused_mlp_triton(x, layers, softmax, block_m)
    return fused_mlp_reference(x, layers, softmax)
