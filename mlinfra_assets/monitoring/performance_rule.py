"""The performance rule of retraining: a partition where the champion does clearly worse than
its holdout figure asks for a retrain, whether or not any feature drifted.

A partition's figure is the realized metric where annotators labeled enough non-training rows,
else the metric estimated from the calibrated probabilities (monitoring.estimation). It drops
when the upper end of its 95% interval is below the champion's holdout figure minus
`thresholds.metric_drop`: a partition that is merely noisy (small, few labels) never asks. The
drift sensor reads the performance asset's `dropped_partitions` as it reads the drift report's
drifted ones (the same cooldown, the same one run per event).
"""

from __future__ import annotations

import math

import duckdb
import pandas as pd

from mlinfra_assets.spec import DatasetSpec

COLUMNS = ["_partition", "figure", "value", "upper", "holdout", "dropped", "why"]


def _number(value: object) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def decide(estimated: object, estimated_high: object, realized: object, realized_high: object,
           holdout: object, drop: float | None) -> tuple[str | None, float | None, float | None, bool, str]:
    """(which figure, its value, its interval's upper end, dropped, why) for one partition."""
    if drop is None:
        return None, None, None, False, "thresholds.metric_drop is null: the performance rule is off"
    holdout = _number(holdout)
    if holdout is None:
        return None, None, None, False, "no holdout figure of the scoring model to compare with"
    if _number(realized) is not None and _number(realized_high) is not None:
        kind, value, high = "realized", float(realized), float(realized_high)
    elif _number(estimated) is not None and _number(estimated_high) is not None:
        kind, value, high = "estimated", float(estimated), float(estimated_high)
    else:
        return None, None, None, False, "no figure: the metric is neither estimated nor realized here"
    floor = holdout - drop
    if high < floor:
        return kind, value, high, True, (
            f"{kind} {value:.3f} (95% interval up to {high:.3f}) is below the holdout figure {holdout:.3f} "
            f"minus thresholds.metric_drop {drop:g} = {floor:.3f}")
    return kind, value, high, False, (
        f"{kind} {value:.3f} (95% interval up to {high:.3f}) reaches {floor:.3f} (holdout {holdout:.3f} "
        f"minus thresholds.metric_drop {drop:g})")


def holdout_figures(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> dict[str, float]:
    """Each model version's latest holdout figure of the spec's metric (training.evaluation)."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables "
                         "WHERE table_schema = 'training' AND table_name = 'evaluation'").fetchall()[0][0]
    if not exists:
        return {}
    rows = con.execute(
        "SELECT model_version, value FROM training.evaluation WHERE slice = 'overall' AND metric = ? "
        "AND value IS NOT NULL QUALIFY row_number() OVER (PARTITION BY model_version ORDER BY evaluated_at DESC) = 1",
        [spec.metric],
    ).fetchall()
    return {str(v): float(x) for v, x in rows}


def decisions(table: pd.DataFrame, holdout: dict[str, float], drop: float | None) -> pd.DataFrame:
    """One decision per row of a monitoring.performance table (`COLUMNS`); a partition scored by
    several versions is compared with the lowest of their holdout figures."""
    out = []
    for row in table.to_dict("records"):
        figures = [holdout[v] for v in str(row["model_version"]).split(",") if v in holdout]
        base = min(figures) if figures else None
        kind, value, high, dropped, why = decide(row["estimated"], row["estimated_high"], row["realized_metric"],
                                                 row["realized_high"], base, drop)
        out.append((row["_partition"], kind, value, high, base, dropped, why))
    return pd.DataFrame(out, columns=COLUMNS)
