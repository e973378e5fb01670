"""Edge compression report of the demo model, and of a second width for comparison, in one run.

Generates the demo warehouse (source, oracle labels, raw) at --rows, builds a training set
from the oracle labels of the non-holdout rows (every row gold), trains the platform's
TabularMLP with the platform's trainer for the spec's hidden layers and for --compare, then
runs the edge stage's core (`compress.build_variants`, `evaluate.evaluate_variants`) on the
frozen holdout. Latencies: one CPU thread, p50/p99 of repeated calls; the anchor is the
fp32 torch model measured in the same run (size_ratio, speedup_b1024). The machine is
shared with other engineers' test runs: expect noise, compare ratios rather than times.
int8 timings of nets [256, 128] and wider can jump between two levels from one process to
the next (glibc returning activation buffers to the OS, docs/edge.md): run it twice.

    python benchmarks/edge.py                     # demo size (~1-2 min)
    python benchmarks/edge.py --out benchmarks/results/edge.md
    python benchmarks/edge.py --rows 200000 --compare 512,256
"""

import argparse
import dataclasses
import datetime
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
warnings.filterwarnings("ignore", message=".*(beta|preview).*")

SHOWN = ["variant", "status", "size_bytes", "gzip_bytes", "size_ratio", "parameters", "sparsity",
         "latency_b1_p50_ms", "latency_b1_p99_ms", "latency_b1024_p50_ms", "latency_b1024_p99_ms",
         "speedup_b1024", "f1", "f1_delta", "pr_auc_delta", "max_abs_diff_vs_fp32", "deployable"]


def demo_frames(rows: int, folder: Path):  # noqa: ANN201 - (spec, training frame, holdout frame)
    from mlinfra_assets import keys
    from mlinfra_assets.edge.assets import holdout_sql
    from mlinfra_assets.holdout import holdout_predicate
    from mlinfra_assets.resources import default_resources
    from mlinfra_assets.runner import run_assets
    from mlinfra_assets.spec import DEFAULT_SPEC, DatasetSpec, load_spec

    data = load_spec(DEFAULT_SPEC).model_dump()
    data["demo"]["rows"] = rows
    data["demo"]["drift"]["day"] = None  # stationary (the default spec's shift is for make run's loop)
    spec = DatasetSpec.model_validate(data)
    resources = default_resources(folder)
    run_assets(spec, resources,
               selection=[keys.source_key(spec), keys.SOURCE_ORACLE, keys.raw_key(spec), keys.QUARANTINE, keys.GOLD])
    wh = resources["warehouse"]
    idc = spec.id_column
    df = wh.query_df(
        f"SELECT r.*, o.{spec.gold.column} AS label FROM {spec.raw_table} r JOIN {spec.gold.table} o "
        f"ON o.{idc} = r.{idc} WHERE NOT {holdout_predicate(spec, 'r.' + idc)} ORDER BY r.{idc}"
    )
    for i, col in enumerate(spec.prob_columns):
        df[f"_{col}"] = (df["label"] == i).astype("float64")  # the training set's columns (training.batches)
    df = df.assign(_row_id=df[idc].astype(str), _weight=1.0, _source="gold")
    return spec, df, wh.query_df(holdout_sql(spec))


def report_for(spec, train_df, holdout, hidden: list[int], epochs: int, folder: Path):  # noqa: ANN001, ANN201
    import numpy as np

    from mlinfra_assets.edge.compress import build_variants
    from mlinfra_assets.edge.edge_onnx import raw_inputs
    from mlinfra_assets.edge.evaluate import evaluate_variants
    from mlinfra_assets.edge.prune import FinetuneSet
    from mlinfra_assets.training.trainer import TrainConfig, train

    start = time.perf_counter()
    cfg = dataclasses.replace(TrainConfig.from_spec(spec), hidden=hidden, epochs=epochs)
    result = train(train_df, spec, cfg, log=lambda *_: None)
    scoring = result.model
    trained = time.perf_counter() - start
    sample = train_df.sample(n=min(spec.edge.finetune_rows, len(train_df)), random_state=spec.edge.seed)
    finetune = FinetuneSet.from_frame(sample, scoring.pre, [f"_{c}" for c in spec.prob_columns])
    variants, skipped, failed = build_variants(scoring, folder / "-".join(map(str, hidden)), spec.edge, finetune,
                                               spec.positive_class)
    built = time.perf_counter() - start - trained
    labels = holdout["_gold_label"].to_numpy(dtype="int64")
    num, cat = scoring.pre.encode(holdout)
    inputs = {"encoded": {"numeric": num, "categorical": cat}, "raw": raw_inputs(holdout, scoring.pre)}
    report = evaluate_variants(variants, inputs, labels, spec.positive_index, spec.edge.f1_margin, skipped,
                               failed=failed)
    note = (f"hidden {hidden}: trained {trained:.0f}s, variants built {built:.0f}s, measured "
            f"{time.perf_counter() - start - trained - built:.0f}s; holdout {len(labels)} rows, "
            f"{int(np.sum(labels == spec.positive_index))} positives")
    return report, note


def targets(report, hidden: list[int]) -> str:  # noqa: ANN001
    r = report.set_index("variant").loc["dynamic_int8"]
    checks = [("size >= 3.5x smaller", r["size_ratio"] >= 3.5, f"{r['size_ratio']:.2f}x"),
              ("speed-up at batch 1024 >= 1.5x", r["speedup_b1024"] >= 1.5, f"{r['speedup_b1024']:.2f}x"),
              ("|F1 delta| <= 0.01", abs(r["f1_delta"]) <= 0.01, f"{r['f1_delta']:+.4f}")]
    return f"dynamic_int8 targets, hidden {hidden}: " + "; ".join(
        f"{name}: {value} ({'met' if ok else 'NOT met'})" for name, ok, value in checks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=60000, help="demo rows generated (the demo's own size: 200000)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--compare", default="64,32", help="hidden layers of a second model ('' to skip; 64,32: the demo net before 2026-11-29)")
    ap.add_argument("--out", type=Path, help="also write the tables as markdown here")
    args = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        spec, train_df, holdout = demo_frames(args.rows, Path(tmp) / "data")
        models = [list(spec.training.hidden)] + ([[int(v) for v in args.compare.split(",")]] if args.compare else [])
        parts = [f"# Edge compression report ({datetime.date.today()}, {platform.node()}, "
                 f"{platform.processor() or platform.machine()}, torch {torch.__version__})\n\n"
                 f"Demo spec `{spec.name}`, {args.rows} generated rows, {len(train_df)} training rows, trainer "
                 f"{args.epochs} epochs. One CPU thread; machine shared with other test runs (noisy).\n"]
        for hidden in models:
            report, note = report_for(spec, train_df, holdout, hidden, args.epochs, Path(tmp) / "edge")
            parts.append(f"\n## hidden {hidden}\n\n{note}\n\n"
                         + report[SHOWN].to_markdown(index=False, floatfmt=".4g") + "\n\n" + targets(report, hidden) + "\n")
            skipped = report[report["status"] != "ok"]
            parts += [f"- {r.variant}: {r.reason}\n" for r in skipped.itertuples()]
    text = "".join(parts)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
