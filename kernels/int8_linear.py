"""Int8 weight-only linear layer: a Triton kernel, its torch reference, and an nn.Module.

Weights are stored as int8 with one fp32 scale per output channel (symmetric,
`w ~= w_int8 * scale[:, None]`). The kernel loads int8 tiles, accumulates
`x @ w_int8.T` in fp32 and fuses the epilogue: per-channel dequantize, bias, ReLU.
Activations are fp32 or fp16; the output has the activation's dtype.

`int8_linear` dispatches: Triton for CUDA tensors (or on CPU under the Triton
interpreter, `TRITON_INTERPRET=1`, when asked with `force_triton=True`), the torch
reference otherwise.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import nn

QMAX = 127

# GPU configurations the autotuner chooses from (keyed on M, N, K).
GPU_CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
    for bm, bn, bk, w, s in [
        # small batches are weight-bandwidth bound: narrow N tiles, long K tiles, many programs
        (16, 16, 256, 2, 4),
        (16, 32, 128, 4, 4),
        (16, 64, 128, 4, 4),
        (16, 64, 64, 4, 3),
        (32, 64, 64, 4, 3),
        (64, 64, 32, 4, 4),
        (64, 128, 64, 4, 3),
        (128, 64, 64, 8, 3),
        (128, 128, 32, 8, 3),
    ]
]
# One large-block configuration for the (slow) CPU interpreter: no benchmarking there.
INTERPRET_CONFIG = triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 64}, num_warps=4, num_stages=1)


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    return bool(triton.knobs.runtime.interpret)


@triton.jit
def _int8_linear_kernel(
    x_ptr, w_ptr, s_ptr, b_ptr, y_ptr,
    M, N, K,
    stride_xm, stride_xk, stride_wn, stride_wk, stride_ym, stride_yn,
    HAS_BIAS: tl.constexpr, RELU: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    mask_m = offs_m < M
    mask_n = offs_n < N
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, tl.cdiv(K, BLOCK_K)):
        k = k0 * BLOCK_K + offs_k
        mask_k = k < K
        x = tl.load(
            x_ptr + offs_m[:, None] * stride_xm + k[None, :] * stride_xk,
            mask=mask_m[:, None] & mask_k[None, :],
            other=0.0,
        )
        w = tl.load(
            w_ptr + k[:, None] * stride_wk + offs_n[None, :] * stride_wn,
            mask=mask_k[:, None] & mask_n[None, :],
            other=0,
        )
        # int8 -> activation dtype is exact (|w| <= 127); accumulate in fp32
        if IEEE:
            acc = tl.dot(x, w.to(x.dtype), acc, input_precision="ieee")
        else:
            acc = tl.dot(x, w.to(x.dtype), acc)
    scale = tl.load(s_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)
    acc = acc * scale[None, :]
    if HAS_BIAS:
        acc = acc + tl.load(b_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    if RELU:
        acc = tl.maximum(acc, 0.0)
    tl.store(
        y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :] * stride_yn,
        acc.to(y_ptr.dtype.element_ty),
        mask=mask_m[:, None] & mask_n[None, :],
    )


def _prune(configs: list[triton.Config], named_args: dict, **kwargs: object) -> list[triton.Config]:
    """Under the interpreter, skip benchmarking: run the one large-block configuration."""
    return [INTERPRET_CONFIG] if interpreting() else [c for c in configs if c is not INTERPRET_CONFIG]


_int8_linear_autotuned = triton.autotune(
    configs=[*GPU_CONFIGS, INTERPRET_CONFIG],
    key=["M", "N", "K"],
    prune_configs_by={"early_config_prune": _prune},
)(_int8_linear_kernel)


def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8 quantization of a [N, K] weight.

    Parameters
    ----------
    w : torch.Tensor
        Float weight, shape [out_features, in_features].

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        `w_int8` (int8, [N, K], values in [-127, 127]) and `scales` (fp32, [N]) with
        `|w - w_int8 * scales[:, None]| <= scales[:, None] / 2`.
    """
    if w.dim() != 2:
        raise ValueError(f"quantize_weight expects a 2-D [out, in] weight, got shape {tuple(w.shape)}")
    w = w.detach().to(torch.float32)
    scales = (w.abs().amax(dim=1) / QMAX).clamp_min(torch.finfo(torch.float32).tiny)
    w_int8 = torch.round(w / scales[:, None]).clamp(-QMAX, QMAX).to(torch.int8)
    return w_int8, scales


def int8_linear_reference(
    x: torch.Tensor, w_int8: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None, relu: bool = False
) -> torch.Tensor:
    """Torch reference of the kernel: `(x @ w_int8.T) * scales + bias`, then ReLU; fp32 math."""
    y = (x.to(torch.float32) @ w_int8.to(torch.float32).T) * scales.to(torch.float32)
    if bias is not None:
        y = y + bias.to(torch.float32)
    if relu:
        y = torch.relu(y)
    return y.to(x.dtype)


def int8_linear_triton(
    x: torch.Tensor,
    w_int8: torch.Tensor,
    scales: torch.Tensor,
    bias: torch.Tensor | None,
    relu: bool = False,
    block_sizes: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """Run the Triton kernel; `block_sizes=(BLOCK_M, BLOCK_N, BLOCK_K)` bypasses the autotuner."""
    if x.dtype not in (torch.float32, torch.float16):
        raise TypeError(f"int8_linear: activations must be float32 or float16, got {x.dtype}")
    if w_int8.dtype != torch.int8 or w_int8.dim() != 2:
        raise TypeError(f"int8_linear: weight must be a 2-D int8 tensor, got {w_int8.dtype} {tuple(w_int8.shape)}")
    n, k = w_int8.shape
    if x.shape[-1] != k:
        raise ValueError(f"int8_linear: x has {x.shape[-1]} features, the weight expects {k}")
    for name, t in (("scales", scales), ("bias", bias)):
        if t is not None and (tuple(t.shape) != (n,) or not t.is_floating_point()):
            raise ValueError(f"int8_linear: {name} must be a float tensor of shape ({n},), got {t.dtype} {tuple(t.shape)}")
    for name, t in (("weight", w_int8), ("scales", scales), ("bias", bias)):
        if t is not None and t.device != x.device:
            raise ValueError(f"int8_linear: {name} is on {t.device}, x on {x.device}: move them to one device")
    lead = x.shape[:-1]
    x2 = x.reshape(-1, k)
    m = x2.shape[0]
    y = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if m == 0:
        return y.reshape(*lead, n)
    b = bias if bias is not None else scales  # placeholder pointer, never read when HAS_BIAS=False
    args = (x2, w_int8, scales, b, y, m, n, k, x2.stride(0), x2.stride(1),
            w_int8.stride(0), w_int8.stride(1), y.stride(0), y.stride(1))
    flags = {"HAS_BIAS": bias is not None, "RELU": relu, "IEEE": x.dtype == torch.float32}
    if block_sizes is not None:
        bm, bn, bk = block_sizes
        grid = (triton.cdiv(m, bm), triton.cdiv(n, bn))
        _int8_linear_kernel[grid](*args, **flags, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)
    else:
        def grid(meta: dict) -> tuple[int, int]:
            return (triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(n, meta["BLOCK_N"]))

        _int8_linear_autotuned[grid](*args, **flags)
    return y.reshape(*lead, n)


def int8_linear(
    x: torch.Tensor,
    w_int8: torch.Tensor,
    scales: torch.Tensor,
    bias: torch.Tensor | None = None,
    relu: bool = False,
    *,
    force_triton: bool = False,
    block_sizes: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """`relu?((x @ w_int8.T) * scales + bias)`: Triton on CUDA, torch on CPU.

    Parameters
    ----------
    x : torch.Tensor
        Activations [..., K], float32 or float16.
    w_int8, scales, bias : torch.Tensor
        From `quantize_weight` ([N, K] int8, [N] fp32) and an optional [N] bias.
    relu : bool
        Apply ReLU in the epilogue.
    force_triton : bool
        Run the Triton kernel on CPU tensors; needs the interpreter (TRITON_INTERPRET=1).
    block_sizes : tuple of int, optional
        Explicit (BLOCK_M, BLOCK_N, BLOCK_K) instead of autotuning.
    """
    if x.is_cuda:
        return int8_linear_triton(x, w_int8, scales, bias, relu, block_sizes)
    if force_triton:
        if not interpreting():
            raise RuntimeError(
                "int8_linear(force_triton=True) on CPU tensors needs the Triton interpreter: "
                "set TRITON_INTERPRET=1 before importing triton"
            )
        return int8_linear_triton(x, w_int8, scales, bias, relu, block_sizes)
    return int8_linear_reference(x, w_int8, scales, bias, relu)


class Int8Linear(nn.Module):
    """An nn.Linear with int8 weights and per-output-channel scales (optionally fused ReLU)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, relu: bool = False):
        super().__init__()
        self.in_features, self.out_features, self.relu = in_features, out_features, relu
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("scales", torch.ones(out_features, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros(out_features, dtype=torch.float32) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear, relu: bool = False) -> Int8Linear:
        """Quantize a trained nn.Linear (weights per output channel; bias kept in fp32)."""
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, relu)
        w_int8, scales = quantize_weight(linear.weight)
        q.weight_int8.copy_(w_int8)
        q.scales.copy_(scales)
        if linear.bias is not None:
            q.bias.copy_(linear.bias.detach().to(torch.float32))
        return q.to(linear.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return int8_linear(x, self.weight_int8, self.scales, self.bias, self.relu)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, relu={self.relu}"


def swap_linears(model: nn.Module) -> nn.Module:
    """Replace every nn.Linear of `model` (in place) by an Int8Linear; returns `model`.

    In an nn.Sequential, a Linear followed by a ReLU becomes one Int8Linear with the ReLU
    fused into its epilogue (the ReLU is replaced by nn.Identity). For a TabularMLP this
    swaps the layers of `model.mlp`.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Sequential):
            layers = list(child)
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.Linear):
                    fuse = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
                    child[i] = Int8Linear.from_linear(layer, relu=fuse)
                    if fuse:
                        child[i + 1] = nn.Identity()
                else:
                    swap_linears(layer)
        elif isinstance(child, nn.Linear):
            setattr(model, name, Int8Linear.from_linear(child))
        else:
            swap_linears(child)
    return model
