"""Triton kernels, each with its torch reference (the CPU path and the tests' oracle).

`kernels.int8_linear` is the int8 weight-only linear layer (kernel, reference, dispatcher
`int8_linear.int8_linear`); its module-level pieces are re-exported here.
"""

from kernels.int8_linear import Int8Linear, int8_linear_reference, quantize_weight, swap_linears

__all__ = ["Int8Linear", "int8_linear_reference", "quantize_weight", "swap_linears"]
