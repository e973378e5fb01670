"""Holdout evaluation and the champion/challenger gate (Dagster-free)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training.dataset import sql
from mlinfra_assets.training.metrics import slice_table
from mlinfra_assets.training.model import ScoringModel

TABLE = "training.evaluation"
COLUMNS = ["model_version", "slice", "slice_value", "metric", "value", "champion_version", "decision", "evaluated_at"]
PROMOTE = "promote"
KEEP = "keep_champion"


@dataclass(frozen=True)
class Scored:
    """A model's holdout probabilities and its metric table (`slice, slice_value, metric, value`)."""

    version: str
    probs: np.ndarray
    table: pd.DataFrame

    def overall(self, metric: str) -> float:
        t = self.table
        value = t.loc[(t["slice"] == "overall") & (t["metric"] == metric), "value"].iloc[0]
        return float("nan") if value is None else float(value)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str

    @property
    def name(self) -> str:
        return PROMOTE if self.promote else KEEP


def score(model: ScoringModel, holdout: pd.DataFrame, spec: DatasetSpec) -> Scored:
    """Score the holdout rows; metrics overall and per value of each `thresholds.slices` column."""
    if holdout.empty:
        raise ValueError(
            f"the holdout of {spec.raw_table} has no rows with a gold label in "
            f"{spec.gold.table if spec.gold else '(no gold)'}: evaluation needs labelled holdout rows"
        )
    if not (holdout["label"] == spec.positive_index).any():
        raise ValueError(
            f"the holdout has no row of class {spec.classes[spec.positive_index]!r}: F1 and PR-AUC "
            "are undefined; raise training.holdout_percent or add gold labels"
        )
    probs = model.predict_proba(holdout)
    return Scored(model.version, probs, slice_table(holdout, probs, spec.positive_index, spec.thresholds.slices))


def gate(challenger_f1: float, champion_f1: float | None, margin: float) -> Decision:
    """Promote when there is no champion, or when challenger F1 >= champion F1 - margin."""
    if champion_f1 is None:
        return Decision(True, "no champion yet")
    if challenger_f1 >= champion_f1 - margin:
        return Decision(True, f"F1 {challenger_f1:.4f} >= champion {champion_f1:.4f} - margin {margin}")
    return Decision(False, f"F1 {challenger_f1:.4f} < champion {champion_f1:.4f} - margin {margin}")


def evaluation_rows(
    challenger: Scored, champion: Scored | None, decision: Decision, evaluated_at: datetime
) -> pd.DataFrame:
    """Rows of `training.evaluation`: the challenger's table, plus the champion's overall figures
    as `champion_<metric>` (both scored on the same holdout)."""
    table = challenger.table.copy()
    if champion is not None:
        overall = champion.table[champion.table["slice"] == "overall"].copy()
        overall["metric"] = "champion_" + overall["metric"]
        table = pd.concat([table, overall], ignore_index=True)
    table.insert(0, "model_version", challenger.version)
    table["champion_version"] = champion.version if champion is not None else None
    table["decision"] = decision.name
    table["evaluated_at"] = evaluated_at
    table["value"] = table["value"].astype("float64")
    return table[COLUMNS]


def slice_overview(scored: Scored) -> pd.DataFrame:
    """The metric table pivoted for people: one row per slice value, one column per metric."""
    wide = scored.table.pivot_table(
        index=["slice", "slice_value"], columns="metric", values="value", aggfunc="first", sort=False
    ).reset_index()
    wide.columns.name = None
    return wide


def write(con, rows: pd.DataFrame) -> int:  # noqa: ANN001 - a DuckDB connection
    """Append one evaluation atomically, replacing earlier rows of the same model version."""
    versions = sorted(rows["model_version"].unique().tolist())
    with transaction(con, _evaluation_rows=rows):
        con.execute("CREATE SCHEMA IF NOT EXISTS training")
        con.execute(sql("evaluation_table"))
        con.execute(f"DELETE FROM {TABLE} WHERE list_contains(?, model_version)", [versions])
        con.execute(
            f"INSERT INTO {TABLE} SELECT model_version::VARCHAR, slice::VARCHAR, slice_value::VARCHAR, "
            "metric::VARCHAR, value::DOUBLE, champion_version::VARCHAR, decision::VARCHAR, "
            "evaluated_at::TIMESTAMP FROM _evaluation_rows"
        )
    return len(rows)
