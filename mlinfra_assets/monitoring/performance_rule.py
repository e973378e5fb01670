"""The performance rule of retraining: a partition where the champion does clearly worse than
its holdout figure asks for a retrain, whether or not any feature drifted.

A partition's figure is the realized metric where annotators labeled enough non-training rows,
else the metric estimated from the calibrated probabilities (monitoring.estimation). It drops
when the upper end of its 95% interval is below the champion's holdout figure minus
`thresholds.metric_drop`: a partition that is merely noisy (small, few labels) never asks. A
partition the scoring model was trained on (inside the training window its version recorded)
is not judged: its figures are in-sample, and its day-to-day spread is no shift. The
drift sensor reads the performance asset's `dropped_partitions` as it reads the drift report's
drifted ones (the same cooldown, the same one run per event).
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec

COLUMNS = ["_partition", "figure", "value", "upper", "holdout", "dropped", "why"]


def _number(value: object) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def decide(estimated: object, estimated_high: object, realized: object, realized_high: object,
           holdout: object, drop: float | None, expected: object = None
           ) -> tuple[str | None, float | None, float | None, float | None, bool, str]:
    """(which figure, its value, its interval's upper end, the holdout figure it is compared
    with, dropped, why) for one partition. A realized figure is compared with the holdout's
    realized one; an estimate with the holdout's estimated one (`expected`: the calibrated
    probabilities' figure on the holdout rows, so the estimator's own bias cancels), else the
    realized one."""
    if drop is None:
        return None, None, None, None, False, "thresholds.metric_drop is null: the performance rule is off"
    if _number(realized) is not None and _number(realized_high) is not None:
        kind, value, high, base, of = "realized", float(realized), float(realized_high), _number(holdout), "holdout figure"
    elif _number(estimated) is not None and _number(estimated_high) is not None:
        kind, value, high = "estimated", float(estimated), float(estimated_high)
        base, of = ((_number(expected), "holdout's estimated figure") if _number(expected) is not None
                    else (_number(holdout), "holdout figure"))
    else:
        return None, None, None, None, False, "no figure: the metric is neither estimated nor realized here"
    if base is None:
        return kind, value, high, None, False, "no holdout figure of the scoring model to compare with"
    floor = base - drop
    if high < floor:
        return kind, value, high, base, True, (
            f"{kind} {value:.3f} (95% interval up to {high:.3f}) is below the {of} {base:.3f} "
            f"minus thresholds.metric_drop {drop:g} = {floor:.3f}")
    return kind, value, high, base, False, (
        f"{kind} {value:.3f} (95% interval up to {high:.3f}) reaches {floor:.3f} ({of} {base:.3f} "
        f"minus thresholds.metric_drop {drop:g})")


def holdout_figures(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, metric: str | None = None) -> dict[str, float]:
    """Each model version's latest holdout figure of `metric` (default: the spec's metric;
    `estimated_<metric>`: the one its calibrated probabilities expect) in training.evaluation."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables "
                         "WHERE table_schema = 'training' AND table_name = 'evaluation'").fetchall()[0][0]
    if not exists:
        return {}
    rows = con.execute(
        "SELECT model_version, value FROM training.evaluation WHERE slice = 'overall' AND metric = ? "
        "AND value IS NOT NULL QUALIFY row_number() OVER (PARTITION BY model_version ORDER BY evaluated_at DESC) = 1",
        [metric or spec.metric],
    ).fetchall()
    return {str(v): float(x) for v, x in rows}


def inside(partition: object, window: tuple[str, str]) -> bool:
    """Whether a `_partition` value (a date, a time or a batch number) lies in a recorded
    training window (its first and last partition as text)."""
    if isinstance(partition, (int, np.integer)):
        return int(window[0]) <= int(partition) <= int(window[1])
    return pd.Timestamp(window[0]) <= pd.Timestamp(partition) <= pd.Timestamp(window[1])


def decisions(table: pd.DataFrame, holdout: dict[str, float], drop: float | None,
              trained: dict[str, tuple[str, str]] | None = None, expected: dict[str, float] | None = None
              ) -> pd.DataFrame:
    """One decision per row of a monitoring.performance table (`COLUMNS`); a partition scored by
    several versions is compared with the lowest of their holdout figures (`holdout`, and for an
    estimate `expected`, the holdout's estimated figures); one that a version scoring it was
    trained on (`trained`: version -> recorded training window) is not judged."""
    out = []
    for row in table.to_dict("records"):
        versions = str(row["model_version"]).split(",")
        seen = [v for v in versions if v in (trained or {}) and inside(row["_partition"], trained[v])]
        if seen:
            out.append((row["_partition"], None, None, None, None, False,
                        f"not judged: version {seen[0]} was trained on this partition (its figures are in-sample)"))
            continue
        figures = [holdout[v] for v in versions if v in holdout]
        estimates = [(expected or {})[v] for v in versions if v in (expected or {})]
        kind, value, high, base, dropped, why = decide(
            row["estimated"], row["estimated_high"], row["realized_metric"], row["realized_high"],
            min(figures) if figures else None, drop, min(estimates) if len(estimates) == len(versions) else None)
        out.append((row["_partition"], kind, value, high, base, dropped, why))
    return pd.DataFrame(out, columns=COLUMNS)
