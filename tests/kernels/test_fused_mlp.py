"""The fused MLP kernel (Triton interpreter) against its torch reference and the TabularMLP."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import pytest  # noqa: E402
import torch  # noqa: E402

from kernels import fused_mlp as f  # noqa: E402
from kernels.int8_linear import quantize_weight, swap_linears  # noqa: E402
from kernels.tabular import FusedTabularMLP  # noqa: E402
from mlinfra_assets.training.model import Preprocessor, TabularMLP  # noqa: E402


def _layers(widths: list[int], int8: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for k, n in zip(widths, widths[1:], strict=False):
        w = torch.randn(n, k, generator=g) / k**0.5
        b = torch.randn(n, generator=g) * 0.1
        layers.append((*quantize_weight(w), b) if int8 else (w, None, b))
    return layers


@pytest.mark.parametrize("m", [1, 19, 70])
@pytest.mark.parametrize("widths", [[18, 64, 32, 2], [5, 17, 33, 3]])
@pytest.mark.parametrize("int8", [True, False])
def test_kernel_matches_reference_on_ragged_shapes(m, widths, int8):
    layers = _layers(widths, int8, seed=m + len(widths))
    x = torch.randn(m, widths[0], generator=torch.Generator().manual_seed(m))
    for softmax in (True, False):
        got = f.fused_mlp(x, layers, softmax, force_triton=True, block_m=16)
        want = f.fused_mlp_reference(x, layers, softmax)
        assert got.shape == (m, widths[-1]) and got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        if softmax:
            torch.testing.assert_close(got.sum(1), torch.ones(m))


def test_autotuned_path_fp16_and_empty_batch():
    layers = _layers([18, 64, 32, 2], int8=True)
    x = torch.randn(37, 18).half()
    got = f.fused_mlp(x, layers, force_triton=True)  # autotuner, pruned to one config
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.float(), f.fused_mlp_reference(x.float(), layers), rtol=1e-2, atol=5e-3)
    assert f.fused_mlp(torch.zeros(0, 18), layers, force_triton=True).shape == (0, 2)


def test_bad_inputs_raise_before_launch():
    layers = _layers([18, 64, 32, 2], int8=True)
    x = torch.randn(4, 18)
    with pytest.raises(ValueError, match="layer 1 expects 18 inputs, the previous layer gives 17"):
        f.fused_mlp(torch.randn(4, 17), layers, force_triton=True)
    with pytest.raises(TypeError, match="float32/float16"):
        f.fused_mlp(x.double(), layers, force_triton=True)
    with pytest.raises(ValueError, match="exactly 3 linear layers"):
        f.fused_mlp(x, layers[:2], force_triton=True)
    with pytest.raises(ValueError, match="int8 weights but no scales"):
        f.fused_mlp(x, [layers[0], (layers[1][0], None, None), layers[2]], force_triton=True)
    with pytest.raises(ValueError, match="scales has shape"):
        f.fused_mlp(x, [layers[0], (layers[1][0], layers[1][1][:3], None), layers[2]], force_triton=True)
    with pytest.raises(ValueError, match="wider than the kernel's 256"):
        f.fused_mlp(torch.randn(2, 300), _layers([300, 8, 8, 2], int8=False), force_triton=True)
    with pytest.raises(TypeError, match="layer 2 weight"):
        f.fused_mlp(x, [layers[0], (layers[1][0].to(torch.int32), layers[1][1], None), layers[2]], force_triton=True)


def test_dispatcher_uses_torch_on_cpu(monkeypatch):
    layers = _layers([6, 16, 16, 2], int8=False)
    x = torch.randn(3, 6)
    monkeypatch.setattr(f, "fused_mlp_triton", lambda *a, **kw: pytest.fail("Triton path taken on CPU"))
    torch.testing.assert_close(f.fused_mlp(x, layers), f.fused_mlp_reference(x, layers))
    monkeypatch.setattr(f, "interpreting", lambda: False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        f.fused_mlp(x, layers, force_triton=True)


def test_the_demo_models_width_runs_fused():
    from mlinfra_assets.spec import DEFAULT_SPEC, load_spec

    spec = load_spec(DEFAULT_SPEC)
    torch.manual_seed(0)
    pre = Preprocessor(spec.numeric, spec.categorical, [0.0] * len(spec.numeric), [1.0] * len(spec.numeric),
                       {c: ["a", "b", "c"] for c in spec.categorical})
    model = TabularMLP(pre, n_classes=spec.n_classes, hidden=list(spec.training.hidden)).eval()
    num, cat = torch.randn(7, len(spec.numeric)), torch.randint(0, 4, (7, len(spec.categorical)))
    with torch.no_grad():
        got = FusedTabularMLP(model)(num, cat, softmax=True, force_triton=True)
        torch.testing.assert_close(got, torch.softmax(model(num, cat), 1), rtol=1e-4, atol=1e-5)


def test_fused_tabular_mlp_matches_the_model_fp32_and_int8():
    torch.manual_seed(0)
    pre = Preprocessor(["a", "b", "c"], ["cat"], [0.0, 1.0, 2.0], [1.0, 2.0, 3.0], {"cat": ["x", "y", "z"]})
    model = TabularMLP(pre, n_classes=2, hidden=[24, 12]).eval()
    num, cat = torch.randn(21, 3), torch.randint(0, 4, (21, 1))
    with torch.no_grad():
        want = torch.softmax(model(num, cat), 1)
        fused = FusedTabularMLP(model)
        torch.testing.assert_close(fused(num, cat, softmax=True, force_triton=True), want, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(torch.softmax(fused(num, cat), 1), want, rtol=1e-4, atol=1e-5)
        q = FusedTabularMLP(swap_linears(model))
        got = q(num, cat, softmax=True, force_triton=True)
        torch.testing.assert_close(got, torch.softmax(q.mlp(q.features(num, cat)), 1), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="Linear-ReLU-Linear-ReLU-Linear"):
        FusedTabularMLP(TabularMLP(pre, n_classes=2, hidden=[8]))
