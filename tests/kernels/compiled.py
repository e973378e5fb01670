"""The Triton kernels compiled for the GPU against their torch references, run as a script in a
fresh interpreter without TRITON_INTERPRET (the test session sets it for the CPU-only cases, and
Triton fixes the mode when a kernel is defined). Exits non-zero on the first mismatch.

    python tests/kernels/compiled.py       # needs a CUDA device
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def check_int8_linear(torch, k) -> int:  # noqa: ANN001 - modules imported late
    cases = 0
    for m in (1, 7, 33, 1030):
        for kk in (13, 70, 256):
            for n in (5, 40, 128):
                g = torch.Generator(device="cuda").manual_seed(m * 1000 + kk * 10 + n)
                x = torch.randn(m, kk, device="cuda", generator=g)
                w_int8, scales = k.quantize_weight(torch.randn(n, kk, device="cuda", generator=g))
                bias = torch.randn(n, device="cuda", generator=g)
                for use_bias, relu in [(True, False), (False, True), (True, True)]:
                    b = bias if use_bias else None
                    want = k.int8_linear_reference(x, w_int8, scales, b, relu)
                    for blocks in ((16, 16, 16), (64, 64, 64), None):  # explicit tiles, then the autotuner
                        got = k.int8_linear(x, w_int8, scales, b, relu, block_sizes=blocks)
                        assert got.is_cuda and got.shape == (m, n) and got.dtype == torch.float32
                        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
                        cases += 1
                    half = k.int8_linear(x.half(), w_int8, scales, b, relu)  # fp16 activations
                    assert half.dtype == torch.float16
                    torch.testing.assert_close(half, k.int8_linear_reference(x.half(), w_int8, scales, b, relu),
                                               rtol=2e-3, atol=2e-2)
                    cases += 1
    x3 = torch.randn(2, 3, 70, device="cuda")
    w_int8, scales = k.quantize_weight(torch.randn(40, 70, device="cuda"))
    got3 = k.int8_linear(x3, w_int8, scales, None)
    assert got3.shape == (2, 3, 40)
    torch.testing.assert_close(got3, k.int8_linear_reference(x3, w_int8, scales, None), rtol=1e-4, atol=1e-4)
    return cases + 1


def check_fused_mlp(torch, f, quantize_weight) -> int:  # noqa: ANN001
    cases = 0
    for widths in ([18, 64, 32, 2], [5, 17, 33, 3], [19, 256, 256, 2]):
        g = torch.Generator(device="cuda").manual_seed(len(widths) + widths[1])
        floats = [(torch.randn(n, kk, device="cuda", generator=g) / kk**0.5, None,
                   torch.randn(n, device="cuda", generator=g) * 0.1) for kk, n in zip(widths, widths[1:], strict=False)]
        int8 = [(*quantize_weight(w), b) for w, _, b in floats]
        for layers in (floats, int8):
            for m in (1, 19, 70, 1000):
                x = torch.randn(m, widths[0], device="cuda", generator=g)
                for softmax in (True, False):
                    want = f.fused_mlp_reference(x, layers, softmax)
                    for block_m in (16, None):
                        got = f.fused_mlp(x, layers, softmax, block_m=block_m)
                        assert got.is_cuda and got.shape == (m, widths[-1])
                        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)
                        cases += 1
    return cases


def check_modules(torch) -> int:  # noqa: ANN001
    from kernels.int8_linear import Int8Linear, swap_linears
    from kernels.tabular import FusedTabularMLP
    from mlinfra_assets.training.model import Preprocessor, TabularMLP

    torch.manual_seed(0)
    pre = Preprocessor(["a", "b", "c"], ["cat"], [0.0, 1.0, 2.0], [1.0, 2.0, 3.0], {"cat": ["x", "y", "z"]})
    model = TabularMLP(pre, n_classes=2, hidden=[24, 12]).eval().cuda()
    num, cat = torch.randn(21, 3, device="cuda"), torch.randint(0, 4, (21, 1), device="cuda")
    with torch.no_grad():
        want = torch.softmax(model(num, cat), 1)
        torch.testing.assert_close(FusedTabularMLP(model)(num, cat, softmax=True), want, rtol=1e-3, atol=1e-4)
        swapped = swap_linears(model)
        assert any(isinstance(m, Int8Linear) for m in swapped.modules())
        assert (torch.softmax(swapped(num, cat), 1) - want).abs().max() < 0.02
    return 2


def main() -> None:
    if os.environ.get("TRITON_INTERPRET"):
        sys.exit("tests/kernels/compiled.py: unset TRITON_INTERPRET, this checks the compiled kernels")
    import torch

    if not torch.cuda.is_available():
        sys.exit("tests/kernels/compiled.py: no CUDA device")
    from kernels import fused_mlp as f
    from kernels import int8_linear as k

    assert not k.interpreting(), "Triton is in its interpreter: the compiled kernels would not run"
    cases = check_int8_linear(torch, k) + check_fused_mlp(torch, f, k.quantize_weight) + check_modules(torch)
    print(f"compiled kernels on {torch.cuda.get_device_name()}: {cases} cases match their references")


if __name__ == "__main__":
    main()
