"""The int8 weight-only linear kernel (Triton interpreter) against its torch reference."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from kernels import int8_linear as k  # noqa: E402
from mlinfra_assets.training.model import Preprocessor, TabularMLP  # noqa: E402

BLOCKS = (64, 64, 64)


def _case(m: int, kk: int, n: int, dtype: torch.dtype = torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, kk, generator=g).to(dtype)
    w = torch.randn(n, kk, generator=g)
    bias = torch.randn(n, generator=g)
    w_int8, scales = k.quantize_weight(w)
    return x, w, w_int8, scales, bias


@pytest.mark.parametrize("m", [1, 7, 33])
@pytest.mark.parametrize("kk", [13, 70])
@pytest.mark.parametrize("n", [5, 40])
def test_kernel_matches_reference_on_ragged_shapes(m, kk, n):
    x, _, w_int8, scales, bias = _case(m, kk, n, seed=m * 1000 + kk * 10 + n)
    for use_bias, relu in [(True, False), (False, True), (True, True)]:
        b = bias if use_bias else None
        got = k.int8_linear(x, w_int8, scales, b, relu, force_triton=True, block_sizes=BLOCKS)
        want = k.int8_linear_reference(x, w_int8, scales, b, relu)
        assert got.shape == (m, n) and got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        if relu:
            assert (got >= 0).all()


@pytest.mark.parametrize("blocks", [(16, 16, 16), (32, 16, 64)])
def test_kernel_masks_across_several_tiles(blocks):
    x, _, w_int8, scales, bias = _case(33, 70, 40)
    got = k.int8_linear(x, w_int8, scales, bias, True, force_triton=True, block_sizes=blocks)
    torch.testing.assert_close(got, k.int8_linear_reference(x, w_int8, scales, bias, True), rtol=1e-5, atol=1e-5)


def test_autotuned_path_and_fp16_activations():
    x, _, w_int8, scales, bias = _case(7, 70, 40, dtype=torch.float16)
    got = k.int8_linear(x, w_int8, scales, bias, force_triton=True)  # autotuner, pruned to one config
    assert got.dtype == torch.float16
    want = k.int8_linear_reference(x, w_int8, scales, bias)
    torch.testing.assert_close(got.float(), want.float(), rtol=2e-3, atol=2e-2)
    x3 = torch.randn(2, 3, 70)  # leading dimensions are flattened and restored
    got3 = k.int8_linear(x3, w_int8, scales, bias, force_triton=True, block_sizes=BLOCKS)
    assert got3.shape == (2, 3, 40)
    torch.testing.assert_close(got3, k.int8_linear_reference(x3, w_int8, scales, bias))


def test_quantization_error_is_bounded():
    w = torch.randn(64, 200, generator=torch.Generator().manual_seed(3)) * torch.linspace(0.01, 5, 64)[:, None]
    w[5] = 0.0  # an all-zero channel must not divide by zero
    w_int8, scales = k.quantize_weight(w)
    assert w_int8.dtype == torch.int8 and int(w_int8.abs().max()) <= 127
    err = (w - w_int8.float() * scales[:, None]).abs()
    assert (err <= scales[:, None] / 2 + 1e-7).all()
    assert torch.isfinite(scales).all() and (w_int8[5] == 0).all()
    rel = err.norm() / w.norm()
    assert rel < 0.01, f"relative quantization error {rel:.4f}"


def test_dispatcher_uses_torch_on_cpu(monkeypatch):
    x, _, w_int8, scales, bias = _case(4, 13, 5)
    calls = []
    real = k.int8_linear_triton
    monkeypatch.setattr(k, "int8_linear_triton", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    want = k.int8_linear_reference(x, w_int8, scales, bias)
    torch.testing.assert_close(k.int8_linear(x, w_int8, scales, bias), want)
    assert calls == []
    k.int8_linear(x, w_int8, scales, bias, force_triton=True, block_sizes=BLOCKS)
    assert calls == [1]
    monkeypatch.setattr(k, "interpreting", lambda: False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        k.int8_linear(x, w_int8, scales, bias, force_triton=True)


def test_swap_linears_fuses_relu_and_keeps_outputs():
    torch.manual_seed(0)
    pre = Preprocessor(["a", "b", "c"], ["cat"], [0.0, 1.0, 2.0], [1.0, 2.0, 3.0], {"cat": ["x", "y", "z"]})
    model = TabularMLP(pre, n_classes=2, hidden=[32, 16]).eval()
    num, cat = torch.randn(50, 3), torch.randint(0, 4, (50, 1))
    with torch.no_grad():
        want = torch.softmax(model(num, cat), 1)
        q = k.swap_linears(model)
        got = torch.softmax(q(num, cat), 1)
    linears = [m for m in q.modules() if isinstance(m, k.Int8Linear)]
    assert len(linears) == 3 and not any(isinstance(m, (nn.Linear, nn.ReLU)) for m in q.modules())
    assert [m.relu for m in linears] == [True, True, False]
    assert (got - want).abs().max() < 0.02
    # the swapped layer's torch path and the kernel agree on the same activations
    lin = linears[0]
    x = torch.randn(9, lin.in_features)
    torch.testing.assert_close(
        lin(x),
        k.int8_linear(x, lin.weight_int8, lin.scales, lin.bias, True, force_triton=True, block_sizes=BLOCKS),
        rtol=1e-5, atol=1e-5,
    )


def test_mismatched_shapes_and_dtypes_raise_before_launch():
    x, _, w_int8, scales, bias = _case(4, 13, 5)
    with pytest.raises(ValueError, match="x has 12 features, the weight expects 13"):
        k.int8_linear(x[:, :12], w_int8, scales, bias, force_triton=True)
    with pytest.raises(TypeError, match="weight must be a 2-D int8"):
        k.int8_linear(x, w_int8.float(), scales, bias, force_triton=True)
    with pytest.raises(TypeError, match="float32 or float16"):
        k.int8_linear(x.double(), w_int8, scales, bias, force_triton=True)
    with pytest.raises(ValueError, match=r"scales must be a float tensor of shape \(5,\)"):
        k.int8_linear(x, w_int8, scales[:4], bias, force_triton=True)
    with pytest.raises(ValueError, match=r"bias must be a float tensor of shape \(5,\)"):
        k.int8_linear(x, w_int8, scales, bias[:, None], force_triton=True)


GPU = torch.cuda.is_available()


def _without_interpreter() -> dict:
    return {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}


@pytest.mark.skipif(not GPU, reason="no CUDA device: the tests above run the kernels in Triton's interpreter")
def test_compiled_kernels_match_their_references_on_the_gpu():
    """Where a GPU is present, the kernels compiled for it (a fresh interpreter: this session
    runs Triton's interpreter for the CPU cases) on ragged shapes, explicit tiles and the
    autotuner, fp32 and fp16, the fused MLP and the modules that use them."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("compiled.py")
    done = subprocess.run([sys.executable, str(script)], env=_without_interpreter(), capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "cases match their references" in done.stdout, done.stdout


def test_gpu_bench_runs_on_a_gpu_and_says_why_not_elsewhere():
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(k.__file__).with_name("bench.py")
    done = subprocess.run([sys.executable, str(bench), "--batches", "1,16", "--shape", "256x512", "--mlp", "19-64-32-2"],
                          env=_without_interpreter(), capture_output=True, text=True, timeout=600)
    if GPU:
        assert done.returncode == 0, done.stderr[-4000:]
        assert "## int8_linear 256x512" in done.stdout and "## fused_mlp 19-64-32-2" in done.stdout
        assert "triton_int8" in done.stdout and "triton_fused_int8" in done.stdout
    else:
        assert done.returncode != 0 and "no CUDA device" in done.stderr
