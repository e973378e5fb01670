"""Own-data proof: on tables the platform has never seen, how much of the gap between a small
gold budget and every true label do the user's labeling functions close?

For each data set of the matrix in tests/own_data/datasets.py (breast cancer with gold in a
separate file, wine with a generated id, iris with string classes and no gold, digits with the
LF module `mlinfra init` drafted, an hourly-timestamped Parquet file) the script does what a
user does: `init_spec.draft` on the file, the user's LF module beside the spec (digits: the
drafted one), the gold section as the matrix sets it. The platform's own stages then run
in-process up to `labeling/label_matrix` (ingest, `raw.gold`, the LFs in DuckDB). Per seed:

  - a gold budget is drawn (seeded) from the non-holdout rows: 10% of them, at least 2 per
    class; it is written as the annotated gold (`labeling.gold_labels`), as the platform's
    human loop would;
  - the label model and majority vote are fit with the platform's code (`label_model.fit`,
    `label_model.majority_fit`, the prior from `weak_labels.class_balance`), the platform
    chooses between them on the budget (`evaluation.compare_methods`, `choose`) and writes
    `labeling.weak_labels`; `training.dataset.build` builds the training set (spec weights,
    no synthetic rows: `synthetic.synthetic_rows` is left empty);
  - the platform's trainer (`training.trainer.train`, `TrainConfig.from_spec`, the seed)
    fits gold-only (the budget), gold+weak (budget + weak soft labels of the other
    non-holdout rows) and the all-labels bound (the true label of every non-holdout row).

Everything is scored on the platform's holdout (`holdout.holdout_predicate`) against the
true labels (iris: its answers file) with the spec's metric; the label model and majority
vote by their argmax, a holdout row no LF votes on getting the prior's majority class. Gap
closed = (gold+weak - gold-only) / (bound - gold-only) on the medians over seeds. The target
(>= 60%) applies where the better of LM / MV beats the majority-class baseline. Nothing is
tuned on the holdout. Each data set runs in a child process (peak RSS of its process tree).

    .venv/bin/python benchmarks/own_data.py [--datasets breast_cancer wine ...] [--seeds 7 8 9]
                                            [--budget 0.1] [--out benchmarks/results/own_data.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlinfra_assets.holdout import holdout_predicate  # noqa: E402
from mlinfra_assets.spec import DatasetSpec  # noqa: E402
from mlinfra_assets.training import batches, dataset  # noqa: E402

TRUTH = "bench.truth"  # every row's true label (class index), kept apart from the platform's tables
MIN_PER_CLASS = 2
TARGET = 0.6
VARIANTS = ("label_model", "majority_vote", "gold_only", "gold_weak", "bound")


# --------------------------------------------------------------------------- the user's files


def prepare(name: str, root: Path) -> tuple[DatasetSpec, pd.DataFrame]:
    """What a user does for case `name`: the file, `mlinfra init` (draft), the LF module, the
    gold section. Returns the loaded spec and the truth (`row_id`, class name) of every row."""
    import yaml

    from mlinfra_assets.init_spec import draft
    from mlinfra_assets.spec import load_spec
    from tests.own_data.datasets import CASES

    case = CASES[name](root)
    args = dict(zip(case.init_args[::2], case.init_args[1::2], strict=True))
    made = draft(str(case.data), args["--target"], args.get("--id"), args.get("--timestamp"), data_dir=root)
    out = root / "spec"
    out.mkdir()
    spec = made.spec
    (out / "lfs.py").write_text(case.lfs if case.lfs is not None else made.lfs)
    table = pd.read_parquet(case.data) if case.data.suffix == ".parquet" else pd.read_csv(case.data)
    target = args["--target"]
    if case.gold == "file":  # as the matrix test: labels in a separate CSV joined on the id
        table[[spec["id_column"], target]].rename(columns={target: "diagnosis"}).to_csv(case.gold_file, index=False)
        table.drop(columns=[target]).to_csv(case.data, index=False)
        spec["gold"] = {"path": os.path.relpath(case.gold_file, out), "column": "diagnosis"}
    elif case.gold == "none":  # no gold: the platform never sees labels; the answers file is the truth
        table.drop(columns=[target]).to_csv(case.data, index=False)
        del spec["gold"]
    (out / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = load_spec(out / "spec.yaml")
    if case.gold == "none":
        truth = pd.read_csv(case.gold_file, dtype=str)[["row_id", "label"]]
    else:
        truth = None  # raw.gold, once the warehouse stage has landed it
    return loaded, truth


def platform_stages(spec: DatasetSpec, data_dir: Path) -> dict:
    """Run the platform's stages up to labeling/label_matrix (and raw.gold) in-process."""
    import dagster as dg

    from mlinfra_assets import keys
    from mlinfra_assets.resources import default_resources
    from mlinfra_assets.runner import run_assets

    resources = default_resources(data_dir)
    wanted = [keys.LABEL_MATRIX, *([keys.GOLD] if spec.gold is not None else [])]
    selection = dg.AssetSelection.assets(*wanted).upstream().required_multi_asset_neighbors()
    run_assets(spec, resources, selection=selection)
    return resources


def write_truth(con, spec: DatasetSpec, truth: pd.DataFrame | None) -> None:  # noqa: ANN001
    """`bench.truth(row_id, label)`: raw.gold, or the answers file mapped to class indices."""
    con.execute("CREATE SCHEMA IF NOT EXISTS bench")
    if truth is None:
        con.execute(f"CREATE OR REPLACE TABLE {TRUTH} AS SELECT CAST(row_id AS VARCHAR) AS row_id, "
                    "CAST(label AS INTEGER) AS label FROM raw.gold")
        return
    frame = pd.DataFrame({"row_id": truth["row_id"].astype(str),
                          "label": [spec.class_index(c) for c in truth["label"]]})
    con.register("_truth", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {TRUTH} AS SELECT row_id, CAST(label AS INTEGER) AS label FROM _truth")
    finally:
        con.unregister("_truth")


def holdout_rows(con, spec: DatasetSpec) -> pd.DataFrame:  # noqa: ANN001
    """The platform's holdout rows (its SQL and predicate) with their true labels."""
    return con.execute(dataset.sql(
        "holdout_rows", id=spec.id_column, raw_table=spec.raw_table, raw_features=dataset.feature_select(spec, "r"),
        labels_sql=f"SELECT row_id, label FROM {TRUTH}", holdout=holdout_predicate(spec, f"r.{spec.id_column}"),
        last_class=str(spec.n_classes - 1),
    )).df()


def pool_labels(con, spec: DatasetSpec) -> pd.DataFrame:  # noqa: ANN001
    """`row_id, label` of every non-holdout raw row (the rows a budget is drawn from)."""
    rid = spec.id_column
    return con.execute(
        f"SELECT CAST(r.{rid} AS VARCHAR) AS row_id, t.label FROM {spec.raw_table} AS r "
        f"JOIN {TRUTH} AS t ON t.row_id = CAST(r.{rid} AS VARCHAR) "
        f"WHERE NOT {holdout_predicate(spec, 'r.' + rid)} ORDER BY row_id"
    ).df()


def bound_sql(spec: DatasetSpec) -> str:
    """Every non-holdout raw row with its true label, one-hot, as gold (the all-labels bound)."""
    onehot = ", ".join(f"CASE WHEN t.label = {i} THEN 1.0 ELSE 0.0 END::DOUBLE AS {c}"
                       for i, c in enumerate(batches.target_columns(spec)))
    weight = float(dataset.source_weights(spec)[0])
    return (f"SELECT CAST(r.{spec.id_column} AS VARCHAR) AS _row_id, {dataset.feature_select(spec, 'r')}, "
            f"{onehot}, t.label::INTEGER AS _label, {weight}::DOUBLE AS _weight, 'gold' AS _source "
            f"FROM {spec.raw_table} AS r JOIN {TRUTH} AS t ON t.row_id = CAST(r.{spec.id_column} AS VARCHAR) "
            f"WHERE NOT {holdout_predicate(spec, 'r.' + spec.id_column)} ORDER BY _row_id")


def draw_budget(pool: pd.DataFrame, n_classes: int, share: float, seed: int) -> pd.DataFrame:
    """A seeded `share` of the pool, topped up to MIN_PER_CLASS rows of each class it has."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    chosen = set(order[: math.ceil(share * len(pool))].tolist())
    labels = pool["label"].to_numpy()
    for k in range(n_classes):
        have = sum(1 for i in chosen if labels[i] == k)
        spare = [i for i in order if labels[i] == k and i not in chosen]
        chosen.update(spare[: max(0, MIN_PER_CLASS - have)])
    return pool.iloc[sorted(chosen)].reset_index(drop=True)


# --------------------------------------------------------------------------- one data set


def weak_labels_for_budget(resources: dict, spec: DatasetSpec, budget: pd.DataFrame) -> dict:
    """The platform's weak-label step with the budget as its annotated gold: the prior, both
    fits, the choice on the budget, `labeling.weak_labels` written. Returns the fits and choice."""
    from mlinfra_assets.labeling import evaluation, label_model
    from mlinfra_assets.labeling.assets.weak import ANNOTATED_GOLD
    from mlinfra_assets.labeling.assets.weak_labels import WEAK_TABLE, _choice, class_balance
    from mlinfra_assets.labeling.lfs import load_lfs
    from mlinfra_assets.resources import replace_table

    warehouse = resources["warehouse"]
    with warehouse.connect() as con:
        con.register("_budget", budget)
        try:
            replace_table(con, "labeling.gold_labels", "SELECT CAST(row_id AS VARCHAR) AS row_id, "
                          "CAST(label AS INTEGER) AS label, 1 AS n_annotations FROM _budget")
        finally:
            con.unregister("_budget")
    lf_set = load_lfs(spec)
    names = lf_set.names
    balance, source = class_balance(spec, lf_set.class_balance, warehouse)
    with warehouse.connect(read_only=True) as con:
        patterns = label_model.read_patterns(con, names)
        gold = evaluation.gold_patterns(con, names, ANNOTATED_GOLD)
    lm = label_model.fit(patterns, names, spec.classes, balance, source, spec.labeling.fit_rows, spec.training.seed)
    mv = label_model.majority_fit(patterns, names, spec.classes, lm.class_balance, lm.balance_source)
    fits = {label_model.LABEL_MODEL: lm, label_model.MAJORITY: mv}
    tables = {}
    if (gold[names].to_numpy() != -1).any(axis=1).any():
        tables["annotated"] = evaluation.compare_methods(gold, fits, names, spec.metric, spec.n_classes,
                                                         spec.positive_index)
    choice, reason, _ = _choice(tables, spec.metric)
    with warehouse.connect() as con:
        con.register("_mlinfra_lm_patterns", fits[choice].patterns)
        try:
            sql = label_model.weak_labels_sql(names, spec.classes, "_mlinfra_lm_patterns")
            replace_table(con, WEAK_TABLE, sql, [fits[choice].version])
        finally:
            con.unregister("_mlinfra_lm_patterns")
    return {"fits": fits, "choice": choice, "reason": reason, "names": names,
            "coverage": 1 - lm.rows_without_votes / max(lm.voted_rows + lm.rows_without_votes, 1)}


def fit_predictions(fit, votes: pd.DataFrame, names: list[str]) -> np.ndarray:  # noqa: ANN001
    """The fit's class per row of `votes` (its pattern's argmax); a row no LF votes on gets the
    prior's (`fit.class_balance`) majority class."""
    joined = votes[names].merge(fit.patterns[[*names, "label"]], on=names, how="left")
    return joined["label"].fillna(int(np.argmax(fit.class_balance))).to_numpy(dtype=np.int64)


def empty_synthetic(con, spec: DatasetSpec) -> None:  # noqa: ANN001
    """`synthetic.synthetic_rows` with no row: the training set's SQL reads it; gold+weak has none."""
    con.execute("CREATE SCHEMA IF NOT EXISTS synthetic")
    con.execute(f"CREATE OR REPLACE TABLE synthetic.synthetic_rows AS SELECT 0::BIGINT AS _synthetic_id, "
                f"{dataset.feature_select(spec, 'r')}, 0::INTEGER AS {batches.LABEL} FROM {spec.raw_table} AS r LIMIT 0")


def score_model(data: batches.TrainingArrays, spec: DatasetSpec, holdout: pd.DataFrame,
                seed: int) -> tuple[float, str, str, float]:
    """(the spec's metric on the holdout, which rows validated, whether the weak rows trained,
    the metric's bootstrap standard error on the holdout) of the platform's trainer on `data`."""
    from mlinfra_assets.training.metrics import metric_score
    from mlinfra_assets.training.trainer import TrainConfig, train

    cfg = dataclasses.replace(TrainConfig.from_spec(spec), seed=seed)
    result = train(data, spec, cfg, log=lambda _: None)
    pred = result.model.predict_proba(holdout).argmax(axis=1)
    score = metric_score(spec.metric, holdout[batches.LABEL].to_numpy(), pred, spec.n_classes, spec.positive_index)
    weak = "-" if result.weak is None else ("kept" if result.weak.used else "left out") + (
        "" if result.weak.compared_on else " (not compared)")
    if result.weak is not None and result.weak.compared_on:
        weak += f" ({result.weak.with_weak:.3f} vs {result.weak.gold_only:.3f})"
    return score, "gold" if result.validation.startswith("gold") else "10% of all", weak, \
        bootstrap_se(spec, holdout[batches.LABEL].to_numpy(), pred, seed)


def bootstrap_se(spec: DatasetSpec, labels: np.ndarray, pred: np.ndarray, seed: int, resamples: int = 500) -> float:
    """The standard deviation of the spec's metric over bootstrap resamples of the holdout rows:
    how far the figure moves by chance on a holdout this small."""
    from mlinfra_assets.training.metrics import metric_score

    rng = np.random.default_rng(seed)
    draws = [metric_score(spec.metric, labels[i], pred[i], spec.n_classes, spec.positive_index)
             for i in (rng.integers(0, len(labels), len(labels)) for _ in range(resamples))]
    return float(np.nanstd(draws))


def run_one(name: str, seeds: list[int], share: float) -> dict:
    """Every variant of data set `name` over `seeds` (in this process)."""
    from mlinfra_assets.training.evaluation import holdout_baselines
    from mlinfra_assets.training.metrics import metric_score

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"mlinfra-own-{name}-") as tmp:
        spec, truth = prepare(name, Path(tmp))
        resources = platform_stages(spec, Path(tmp) / "spec" / "data")
        stages_s = time.perf_counter() - start
        with resources["warehouse"].connect() as con:
            write_truth(con, spec, truth)
            empty_synthetic(con, spec)
            holdout = holdout_rows(con, spec)
            pool = pool_labels(con, spec)
            rows = int(con.execute(f"SELECT count(*) FROM {spec.raw_table}").fetchall()[0][0])
            bound = batches.stream_arrays(con, spec, bound_sql(spec))
            votes = con.execute(f"SELECT * FROM labeling.label_matrix WHERE {holdout_predicate(spec, 'row_id')}").df()
        votes["row_id"] = votes["row_id"].astype(str)
        votes = holdout[[batches.ROW_ID]].merge(votes, left_on=batches.ROW_ID, right_on="row_id", how="left")
        if votes["row_id"].isna().any():
            raise RuntimeError(f"{name}: {int(votes['row_id'].isna().sum())} holdout rows have no label-matrix row")
        labels = holdout[batches.LABEL].to_numpy()
        base = holdout_baselines(holdout, spec)
        per_seed, choices, budgets = [], [], []
        for seed in seeds:
            budget = draw_budget(pool, spec.n_classes, share, seed)
            budgets.append(len(budget))
            weak = weak_labels_for_budget(resources, spec, budget)
            votes_filled = votes.fillna({n: -1 for n in weak["names"]}).astype({n: "int64" for n in weak["names"]})
            figures = {
                method: metric_score(spec.metric, labels, fit_predictions(fit, votes_filled, weak["names"]),
                                     spec.n_classes, spec.positive_index)
                for method, fit in weak["fits"].items()
            }
            choices.append(weak["choice"])
            with resources["warehouse"].connect() as con:
                dataset.build(con, spec)
                gold_only = batches.stream_arrays(con, spec, f"SELECT * FROM {dataset.TABLE} WHERE _source = 'gold' "
                                                  "ORDER BY _row_id")
                gold_weak = batches.stream_arrays(con, spec, f"SELECT * FROM {dataset.TABLE} "
                                                  "WHERE _source IN ('gold', 'weak') ORDER BY _source, _row_id")
                weak_truth = con.execute(
                    f"SELECT w.label AS weak, t.label AS truth FROM labeling.weak_labels AS w JOIN {TRUTH} AS t "
                    f"ON t.row_id = CAST(w.row_id AS VARCHAR) JOIN {dataset.TABLE} AS s "
                    "ON s._row_id = t.row_id AND s._source = 'weak'").df()
            validated = {}
            for variant, data in (("gold_only", gold_only), ("gold_weak", gold_weak), ("bound", bound)):
                figures[variant], validated[variant], weak_choice, figures[f"{variant}_se"] = score_model(
                    data, spec, holdout, seed)
                if variant == "gold_weak":
                    figures["weak_choice"] = weak_choice
            # how good the weak rows' labels are (against the truth of those training rows; a diagnosis only)
            figures["weak_rows"] = len(weak_truth)
            figures["weak_metric"] = metric_score(spec.metric, weak_truth["truth"].to_numpy(),
                                                  weak_truth["weak"].to_numpy(), spec.n_classes, spec.positive_index)
            figures["validated"] = validated
            per_seed.append(figures)
            print(f"  {name} seed {seed}: budget {len(budget)}, weak labels by {weak['choice']}, "
                  + ", ".join(f"{k} {figures[k]:.3f}" for k in (*VARIANTS, "weak_metric")), flush=True)
    peak_kib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {
        "name": name, "classes": spec.n_classes, "class_names": list(spec.classes), "rows": rows,
        "holdout": len(holdout), "pool": len(pool), "budget": budgets, "metric": spec.metric,
        "majority": base["majority"], "prior": base["prior"], "per_seed": per_seed, "choices": choices,
        "coverage": weak["coverage"], "bound_rows": len(bound), "stages_s": stages_s,
        "weights": dict(spec.training.weights), "holdout_percent": spec.training.holdout_percent,
        "wall_s": time.perf_counter() - start, "peak_mib": peak_kib / 1024,
    }


# --------------------------------------------------------------------------- the report


def _median(result: dict, key: str) -> float:
    values = [s[key] for s in result["per_seed"] if not np.isnan(s[key])]  # NaN: undefined on these rows
    return float(np.median(values)) if values else float("nan")


def summarize(result: dict) -> dict:
    med = {k: _median(result, k) for k in (*VARIANTS, "gold_only_se")}
    gap = med["bound"] - med["gold_only"]
    closed = (med["gold_weak"] - med["gold_only"]) / gap if gap > 0 else float("nan")
    lfs_beat = max(med["label_model"], med["majority_vote"]) > result["majority"]
    # gold+weak - gold-only >= TARGET x (bound - gold-only): with a gap, "closes >= 60% of it"; with
    # none (gold-only already at the bound), "does not fall below gold-only by more than 60% of it"
    met = med["gold_weak"] - med["gold_only"] >= TARGET * gap
    if not lfs_beat:
        verdict = "n/a (LFs do not beat majority)"
    elif gap > 0:
        verdict = "met" if met else "NOT met"
    else:
        verdict = ("met" if met else "NOT met") + f" (no gap: gold-only >= bound; gold+weak {med['gold_weak'] - med['gold_only']:+.3f})"
    return {**med, "closed": closed, "lfs_beat": lfs_beat, "verdict": verdict}


def table(results: list[dict]) -> str:
    head = ("| data set | classes | rows | holdout | gold budget | metric | majority | LM | MV | gold-only | "
            "gold+weak | bound | gap closed | holdout s.e. | LFs beat majority? | target met? | peak RSS | wall |")
    lines = [head, "|:--|--:|--:|--:|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|:--|:--|--:|--:|"]
    for r in results:
        s = summarize(r)
        closed = "no gap" if np.isnan(s["closed"]) else f"{s['closed']:.0%}"
        lines.append(
            f"| {r['name']} | {r['classes']} | {r['rows']} | {r['holdout']} | {int(np.median(r['budget']))} "
            f"| {r['metric']} | {r['majority']:.3f} | {s['label_model']:.3f} | {s['majority_vote']:.3f} "
            f"| {s['gold_only']:.3f} | {s['gold_weak']:.3f} | {s['bound']:.3f} | {closed} | {s['gold_only_se']:.3f} "
            f"| {'yes' if s['lfs_beat'] else 'no'} | {s['verdict']} | {r['peak_mib']:.0f} MiB | {r['wall_s']:.0f} s |"
        )
    return "\n".join(lines)


def per_seed_table(results: list[dict], seeds: list[int]) -> str:
    lines = ["| data set | seed | budget | weak labels by | weak rows | weak rows' metric | LM | MV | gold-only | "
             "gold+weak | weak rows trained? (with vs without, on gold) | bound | validated on (gold-only / gold+weak / bound) |",
             "|:--|--:|--:|:--|--:|--:|--:|--:|--:|--:|:--|--:|:--|"]
    for r in results:
        for seed, budget, choice, s in zip(seeds, r["budget"], r["choices"], r["per_seed"], strict=True):
            val = " / ".join(s["validated"][v] for v in ("gold_only", "gold_weak", "bound"))
            lines.append(f"| {r['name']} | {seed} | {budget} | {choice} | {s['weak_rows']} | {s['weak_metric']:.3f} "
                         f"| {s['label_model']:.3f} | {s['majority_vote']:.3f} | {s['gold_only']:.3f} "
                         f"| {s['gold_weak']:.3f} | {s['weak_choice']} | {s['bound']:.3f} | {val} |")
    return "\n".join(lines)


NOTES = """\
Medians over seeds {seeds}, each on the platform's holdout ({holdout_percent}% of rows by hash of the id) against
the true labels (iris: its answers file; the platform run has no gold). Gold budget: a seeded {share:.0%} of the
non-holdout rows, at least {min_per_class} per class, given to the platform as annotated gold. LM / MV: Snorkel's
label model and majority vote as the platform fits them, argmax on the holdout rows; a holdout row no LF votes on
gets the prior's majority class. gold+weak: the budget plus the weak soft labels (written by whichever of LM / MV
the platform chose on the budget) of the other non-holdout rows, spec weights {weights}, no synthetic rows. Bound:
the true label of every non-holdout row. Trainer: the platform's (`TrainConfig.from_spec`, the seed). Gap closed
= (gold+weak - gold-only) / (bound - gold-only) on the medians; target >= {target:.0%} where the better of LM / MV
beats the majority-class baseline (`majority`, on the same holdout); where gold-only already reaches the bound
(no gap), gold+weak must not fall below gold-only by more than 60% of the (negative) gap. Holdout s.e.: the
standard deviation of gold-only's figure over 500 bootstrap resamples of the holdout rows (median over seeds),
how far a figure moves by chance on a holdout this small: a gap or a shortfall within it is not a finding. Per seed, "weak rows'
metric" scores the weak labels of the gold+weak training rows against their true labels (a diagnosis, nothing
is chosen on it); "weak rows trained?" is the trainer's own choice (`trainer.choose_weak`): it trains with the
weak rows and without them and keeps the better on gold rows (a gold validation split, or 3 folds of the gold
rows when they are too few to split; ties keep the weak rows), so gold+weak equals gold-only where they were left
out. "Validated on" says which rows chose the final model's epoch ("gold": a share of the gold rows;
"10% of all": too few gold rows, a seeded 10% of the training set, weak rows included). Peak RSS: the data set's child process
(self + its children); wall: its whole run (the platform's stages, {n_seeds} seeds x 3 variants, gold+weak up to 8 trainings with its choice, + 2 label fits)."""


def main() -> None:
    from tests.own_data.datasets import CASES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--budget", type=float, default=0.1, help="share of the non-holdout rows given as gold")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "own_data.md",
                        help="the results file ('-': none)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one data set, print its JSON
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args.seeds, args.budget)), flush=True)
        return
    command = "    .venv/bin/python benchmarks/own_data.py " + " ".join(sys.argv[1:])
    start, results = time.perf_counter(), []
    load = os.getloadavg()[0]
    for name in args.datasets:
        print(f"{name} ...", flush=True)
        child = [sys.executable, __file__, "--one", name, "--seeds", *map(str, args.seeds), "--budget", str(args.budget)]
        done = subprocess.run(child, capture_output=True, text=True, cwd=ROOT)
        lines = done.stdout.splitlines()
        print("\n".join(line for line in lines if line.startswith("  ")), flush=True)
        found = [line for line in lines if line.startswith("RESULT ")]
        if done.returncode != 0 or not found:
            raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        results.append(json.loads(found[-1].removeprefix("RESULT ")))
    total = time.perf_counter() - start
    weights = sorted({json.dumps(r["weights"]) for r in results})
    notes = NOTES.format(seeds=" ".join(map(str, args.seeds)), holdout_percent=results[0]["holdout_percent"],
                         share=args.budget, min_per_class=MIN_PER_CLASS, weights=" / ".join(weights), target=TARGET,
                         n_seeds=len(args.seeds))
    report = "\n\n".join([
        table(results), notes, "Per seed:", per_seed_table(results, args.seeds),
        f"{len(results)} data sets in {total:.0f} s; load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} cores, Python {platform.python_version()}).",
    ])
    print("\n" + report)
    if str(args.out) != "-":
        args.out.write_text(f"# own_data benchmark (latest run)\n\nCommand, {date.today().isoformat()}:\n\n"
                            f"{command.rstrip()}\n\n{report}\n")
        print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
