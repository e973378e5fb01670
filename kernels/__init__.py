"""Triton kernels, each with its torch reference (the CPU path and the tests' oracle).

`kernels.int8_linear`: int8 weight-only linear layer with fused dequantize, bias and ReLU
(dispatcher `kernels.int8_linear.int8_linear`, module `Int8Linear`).
`kernels.fused_mlp`: the whole 3-layer MLP forward with softmax in one kernel for small
batches (dispatcher `kernels.fused_mlp.fused_mlp`), wrapped for the TabularMLP by
`kernels.tabular.FusedTabularMLP`. `kernels/bench.py` times them on an NVIDIA GPU.
"""

from kernels.fused_mlp import fused_mlp_reference
from kernels.int8_linear import Int8Linear, int8_linear_reference, quantize_weight, swap_linears
from kernels.tabular import FusedTabularMLP

__all__ = [
    "FusedTabularMLP", "Int8Linear", "fused_mlp_reference", "int8_linear_reference", "quantize_weight",
    "swap_linears",
]
