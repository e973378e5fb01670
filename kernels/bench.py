"""GPU benchmark of the Triton kernels against torch (needs an NVIDIA GPU; exits with a message otherwise).

int8_linear (fp16 activations, int8 weights, fused dequantize + bias) against cuBLAS fp16 and
bf16 `F.linear` and against dequantize-then-matmul (int8 -> fp16 weight, then cuBLAS), and
fused_mlp (the TabularMLP's 3 layers + softmax in one launch) against torch eager, at batch
1..4096. Per row: median time (triton.testing.do_bench), TFLOP/s, GB/s of the bytes the
operation must move, and the fraction of the GPU's memory bandwidth (the spec figure when the
GPU is known, else a measured device-to-device copy).

    python kernels/bench.py                       # print the tables
    python kernels/bench.py --out benchmarks/results/kernels.md --shape 8192x8192
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

# vendor spec peak memory bandwidth, GB/s, by a substring of torch.cuda.get_device_name()
PEAK_GBS = {"H200": 4800, "H100 NVL": 3900, "H100 PCIe": 2000, "H100": 3350, "GH200": 4000, "A100-SXM4-80GB": 2039,
            "A100 80GB PCIe": 1935, "A100": 1555, "L40S": 864, "L4": 300, "A10G": 600, "RTX 4090": 1008}
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]


def peak_bandwidth(torch) -> tuple[float, str]:  # noqa: ANN001 - the torch module, imported late
    name = torch.cuda.get_device_name()
    for key, gbs in PEAK_GBS.items():
        if key in name:
            return float(gbs), f"spec {gbs} GB/s"
    n = 1 << 28  # 1 GiB of fp32: copy reads and writes it
    a, b = torch.empty(n, device="cuda"), torch.empty(n, device="cuda")
    from triton.testing import do_bench

    ms = do_bench(lambda: b.copy_(a))
    gbs = 2 * a.numel() * 4 / ms / 1e6
    return gbs, f"measured copy {gbs:.0f} GB/s (GPU not in the spec table)"


def bench_int8_linear(torch, n: int, k: int, batches: list[int], peak: float) -> list[dict]:  # noqa: ANN001
    import torch.nn.functional as F  # noqa: N812
    from triton.testing import do_bench

    from kernels.int8_linear import int8_linear_triton, quantize_weight

    g = torch.Generator(device="cuda").manual_seed(0)
    w = torch.randn(n, k, device="cuda", generator=g) / k**0.5
    w8, s = quantize_weight(w)
    b = torch.randn(n, device="cuda", generator=g)
    w16, b16, s16 = w.half(), b.half(), s.half()
    wbf, bbf = w.bfloat16(), b.bfloat16()
    rows = []
    for m in batches:
        x = torch.randn(m, k, device="cuda", generator=g).half()
        xbf = x.bfloat16()
        act = (m * k + m * n) * 2  # read x, write y (2-byte activations)
        runs = {
            "triton_int8": (lambda x=x: int8_linear_triton(x, w8, s, b), n * k + act + 8 * n),
            "cublas_fp16": (lambda x=x: F.linear(x, w16, b16), 2 * n * k + act + 2 * n),
            "cublas_bf16": (lambda xbf=xbf: F.linear(xbf, wbf, bbf), 2 * n * k + act + 2 * n),
            "dequant_then_matmul": (lambda x=x: F.linear(x, w8.half() * s16[:, None], b16), 5 * n * k + act + 4 * n),
        }
        ref = F.linear(x.float(), w8.float() * s[:, None], b)
        err = (int8_linear_triton(x, w8, s, b).float() - ref).abs().max().item()
        times = {name: do_bench(fn, warmup=25, rep=100) for name, (fn, _) in runs.items()}
        for name, (_, nbytes) in runs.items():
            ms = times[name]
            rows.append({"kernel": f"int8_linear {n}x{k}", "batch": m, "impl": name, "us": ms * 1e3,
                         "tflops": 2 * m * n * k / ms / 1e9, "gbs": nbytes / ms / 1e6,
                         "bw_fraction": nbytes / ms / 1e6 / peak,
                         "speedup_vs_dequant": times["dequant_then_matmul"] / ms,
                         "speedup_vs_fp16": times["cublas_fp16"] / ms,
                         "max_abs_err": err if name == "triton_int8" else float("nan")})
    return rows


def bench_fused_mlp(torch, widths: list[int], batches: list[int], peak: float) -> list[dict]:  # noqa: ANN001
    from triton.testing import do_bench

    from kernels.fused_mlp import fused_mlp_reference, fused_mlp_triton
    from kernels.int8_linear import quantize_weight

    g = torch.Generator(device="cuda").manual_seed(0)
    fp32 = [(torch.randn(nn_, kk, device="cuda", generator=g) / kk**0.5, None,
             torch.randn(nn_, device="cuda", generator=g) * 0.1) for kk, nn_ in zip(widths, widths[1:], strict=False)]
    int8 = [(*quantize_weight(w), bias) for w, _, bias in fp32]
    params = sum(w.numel() for w, _, _ in fp32)
    flops_row = 2 * params
    rows = []
    for m in batches:
        x = torch.randn(m, widths[0], device="cuda", generator=g)
        io = (m * widths[0] + m * widths[-1]) * 4
        runs = {
            "triton_fused_fp32": (lambda x=x: fused_mlp_triton(x, fp32), 4 * params + io),
            "triton_fused_int8": (lambda x=x: fused_mlp_triton(x, int8), params + io),
            "torch_eager_fp32": (lambda x=x: fused_mlp_reference(x, fp32), 4 * params + io),
        }
        err = (fused_mlp_triton(x, fp32) - fused_mlp_reference(x, fp32)).abs().max().item()
        times = {name: do_bench(fn, warmup=25, rep=100) for name, (fn, _) in runs.items()}
        for name, (_, nbytes) in runs.items():
            ms = times[name]
            rows.append({"kernel": f"fused_mlp {'-'.join(map(str, widths))}", "batch": m, "impl": name, "us": ms * 1e3,
                         "tflops": flops_row * m / ms / 1e9, "gbs": nbytes / ms / 1e6,
                         "bw_fraction": nbytes / ms / 1e6 / peak,
                         "speedup_vs_dequant": float("nan"), "speedup_vs_fp16": times["torch_eager_fp32"] / ms,
                         "max_abs_err": err if name == "triton_fused_fp32" else float("nan")})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", action="append", help="int8_linear NxK (repeatable; default 4096x4096 and 8192x8192)")
    ap.add_argument("--mlp", action="append", help="fused_mlp widths, e.g. 18-64-32-2 (repeatable)")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)), help="comma-separated batch sizes")
    ap.add_argument("--out", type=Path, help="also write the tables as markdown to this file")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("kernels/bench.py: no CUDA device (torch.cuda.is_available() is False). It measures the Triton "
                 "kernels on an NVIDIA GPU; on CPU the kernels run only in the interpreter (tests/kernels).")
    import pandas as pd

    batches = [int(b) for b in args.batches.split(",")]
    peak, peak_note = peak_bandwidth(torch)
    rows = []
    for shape in args.shape or ["4096x4096", "8192x8192"]:
        n, k = (int(v) for v in shape.lower().split("x"))
        rows += bench_int8_linear(torch, n, k, batches, peak)
    for mlp in args.mlp or ["19-64-32-2", "19-256-256-2"]:  # the demo's TabularMLP, and the edge-sized one
        rows += bench_fused_mlp(torch, [int(v) for v in mlp.split("-")], batches, peak)
    table = pd.DataFrame(rows)
    head = (f"# Triton kernels on {torch.cuda.get_device_name()} ({datetime.date.today()})\n\n"
            f"torch {torch.__version__}, CUDA {torch.version.cuda}; bandwidth fraction against {peak_note}. "
            "Times are do_bench medians. speedup_vs_fp16 of fused_mlp is against torch eager fp32.\n")
    parts = [head]
    for kernel, part in table.groupby("kernel", sort=False):
        parts.append(f"\n## {kernel}\n\n" + part.drop(columns="kernel").to_markdown(index=False, floatfmt=".3g") + "\n")
    small = table[(table["batch"] <= 16) & (table["impl"] == "triton_int8")]
    if len(small):
        parts.append(f"\nint8_linear at batch <= 16: min speedup vs dequantize-then-matmul "
                     f"{small['speedup_vs_dequant'].min():.2f}x (target 1.5x), min bandwidth fraction "
                     f"{small['bw_fraction'].min():.0%} (target 70%)\n")
    text = "".join(parts)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
