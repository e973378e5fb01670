"""`FusedTabularMLP`: a TabularMLP whose MLP runs as one fused kernel (`kernels.fused_mlp`).

Standardization and embedding lookups stay in torch (a gather and an elementwise op);
the three linear layers, their ReLUs and the softmax are one launch on CUDA. Works on a
plain TabularMLP (fp32 weights) and on one whose Linears were swapped for `Int8Linear`.
"""

from __future__ import annotations

import torch
from torch import nn

from kernels.fused_mlp import fused_mlp
from kernels.int8_linear import Int8Linear

_PASS_THROUGH = (nn.ReLU, nn.Dropout, nn.Identity)


def mlp_layers(mlp: nn.Sequential) -> list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]:
    """(weight, scales, bias) of each linear layer of `mlp`, checking that it is Linear-ReLU-...-Linear."""
    layers, kinds = [], []
    for i, m in enumerate(mlp):
        kinds.append(type(m).__name__)
        if isinstance(m, nn.Linear):
            layers.append((m.weight.detach(), None, None if m.bias is None else m.bias.detach()))
        elif isinstance(m, Int8Linear):
            layers.append((m.weight_int8, m.scales, m.bias))
        elif not isinstance(m, _PASS_THROUGH):
            raise ValueError(f"FusedTabularMLP: layer {i} is {type(m).__name__}; only Linear/Int8Linear, ReLU, "
                             "Dropout and Identity can be fused")
    hidden_relu = [
        isinstance(nxt, nn.ReLU) or (isinstance(m, Int8Linear) and m.relu)
        for m, nxt in zip(mlp, [*list(mlp)[1:], None], strict=True)
        if isinstance(m, (nn.Linear, Int8Linear))
    ]
    if len(layers) != 3 or hidden_relu != [True, True, False]:
        raise ValueError(f"FusedTabularMLP: the kernel fuses Linear-ReLU-Linear-ReLU-Linear; this MLP is {kinds}")
    return layers


class FusedTabularMLP(nn.Module):
    """Same inputs and logits as the TabularMLP it is built from (eval mode: no dropout)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        for attr in ("features", "mlp"):
            if not hasattr(model, attr):
                raise TypeError(f"FusedTabularMLP needs a TabularMLP-like model with `{attr}`; got {type(model).__name__}")
        self.source = model  # its `features` (standardize, embed) feed the fused MLP
        self.mlp = model.mlp
        mlp_layers(self.mlp)  # validate now, not at the first call

    def features(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        return self.source.features(numeric, categorical)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor, softmax: bool = False,
                force_triton: bool = False) -> torch.Tensor:
        return fused_mlp(self.features(numeric, categorical), mlp_layers(self.mlp), softmax, force_triton=force_triton)
