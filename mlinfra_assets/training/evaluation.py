"""Holdout evaluation and the champion/challenger gate (Dagster-free).

Every evaluation scores the spec's metric (`spec.metric`) beside two baselines that ignore
the features (the majority class and the class priors, `metrics.baselines`); the gate refuses
a challenger that does not beat the majority class. Without labelled holdout rows (no gold and
no annotated holdout row yet) nothing is scored and the gate says so (`gate_not_evaluated`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training.dataset import LABEL, sql
from mlinfra_assets.training.figures import FIGURE_NAMES
from mlinfra_assets.training.metrics import baselines, expected_metric, per_class, slice_table

if TYPE_CHECKING:  # torch (~2.5 s), which loading the code location does not need
    from mlinfra_assets.training.model import ScoringModel

TABLE = "training.evaluation"
COLUMNS = ["model_version", "slice", "slice_value", "metric", "value", "champion_version", "decision", "evaluated_at"]
PROMOTE = "promote"
KEEP = "keep_champion"
SHADOW = "shadow"  # the figures say promote; it scores live partitions as `shadow` first (monitoring.shadow)
NOT_EVALUATED = (
    "not evaluated: no labelled holdout rows; annotate the queue (mlinfra label) so that holdout rows "
    "get labels, then re-materialize training/evaluation"
)
CLASS_SLICE = "class"  # rows of training.evaluation with per-class precision / recall / f1 / support


def baseline_metric(kind: str, metric: str) -> str:
    """The name of a baseline's figure in training.evaluation: `baseline_<kind>_<metric>`."""
    return f"baseline_{kind}_{metric}"


@dataclass(frozen=True)
class Scored:
    """A model's holdout probabilities and its metric table (`slice, slice_value, metric, value`):
    overall and per slice, per class (slice `class`), and the baselines' figures (overall)."""

    version: str
    probs: np.ndarray
    table: pd.DataFrame
    metric: str = "f1"

    def overall(self, metric: str) -> float:
        t = self.table
        value = t.loc[(t["slice"] == "overall") & (t["metric"] == metric), "value"]
        return float("nan") if value.empty or value.iloc[0] is None else float(value.iloc[0])

    @property
    def value(self) -> float:
        """The spec's metric on the holdout (NaN where it is undefined)."""
        return self.overall(self.metric)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    shadow: bool = False  # promote through the shadow period (alias `shadow`, not `champion`)

    @property
    def name(self) -> str:
        return (SHADOW if self.shadow else PROMOTE) if self.promote else KEEP


def through_shadow(decision: Decision, champion_version: str | None, shadow_days: int) -> Decision:
    """A promotion with a champion in place goes through `shadow_days` partitions of shadow
    scoring first (serving.shadow_days; 0, or no champion yet: straight to champion)."""
    if not decision.promote or champion_version is None or shadow_days <= 0:
        return decision
    return Decision(True, f"{decision.reason}; it scores {shadow_days} live partition(s) as shadow beside "
                          f"champion v{champion_version} before it replaces it (serving.shadow_days)", shadow=True)


def estimated_metric(metric: str) -> str:
    """The name of the holdout figure the calibrated probabilities expect (no label used): the
    baseline of the metric estimated per partition (monitoring/performance_rule.py)."""
    return f"estimated_{metric}"


def not_evaluable(holdout: pd.DataFrame, spec: DatasetSpec) -> str | None:
    """Why the holdout cannot score the spec's metric (None when it can): no labelled row, or
    for the positive class's F1 no row of that class."""
    if holdout.empty:
        if spec.gold is None:
            return NOT_EVALUATED
        return (f"the holdout of {spec.raw_table} has no rows with a gold label in {keys.GOLD_TABLE}: "
                "evaluation needs labelled holdout rows; check the spec's gold section and its ids")
    if spec.metric == "f1" and not (holdout[LABEL] == spec.positive_index).any():
        return (f"not evaluated: the {len(holdout)} labelled holdout rows hold no row of class "
                f"{spec.classes[spec.positive_index]!r}, so its F1 is undefined; raise "
                "training.holdout_percent or label more holdout rows")
    return None


def holdout_baselines(holdout: pd.DataFrame, spec: DatasetSpec) -> dict[str, float]:
    """`{"majority": x, "prior": y}`: the spec's metric of always answering the holdout's most
    common class, and of answering at random with its class priors (`metrics.baselines`)."""
    return baselines(spec.metric, holdout[LABEL].to_numpy(), spec.n_classes, spec.positive_index)


def score(model: ScoringModel, holdout: pd.DataFrame, spec: DatasetSpec,
          reference: dict[str, float] | None = None) -> Scored:
    """Score the holdout rows: figures overall and per value of each `thresholds.slices` column,
    per class, and (overall) the baselines' figures `reference` (default: `holdout_baselines`).

    Raises
    ------
    ValueError
        when the holdout cannot score the metric (`not_evaluable` says why).
    """
    reason = not_evaluable(holdout, spec)
    if reason is not None:
        raise ValueError(reason)
    probs = model.predict_proba(holdout)
    table = slice_table(holdout, probs, spec.positive_index, spec.thresholds.slices, spec.metric, LABEL)
    classes = per_class(holdout[LABEL].to_numpy(), probs.argmax(axis=1), list(spec.classes))
    long = classes.melt(id_vars="class", var_name="metric", value_name="value").rename(columns={"class": "slice_value"})
    long.insert(0, "slice", CLASS_SLICE)
    reference = holdout_baselines(holdout, spec) if reference is None else reference
    expected = expected_metric(spec.metric, model.calibration.apply(probs), probs.argmax(axis=1), spec.n_classes,
                               spec.positive_index)
    base = pd.DataFrame([("overall", "all", baseline_metric(kind, spec.metric), value)
                         for kind, value in reference.items()]
                        + [("overall", "all", estimated_metric(spec.metric), expected)], columns=table.columns)
    table = pd.concat([table, base, long], ignore_index=True)
    table["value"] = [None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v) for v in table["value"]]
    return Scored(model.version, probs, table, spec.metric)


def gate(challenger: float, champion: float | None, margin: float, majority: float | None = None,
         metric: str = "f1") -> Decision:
    """Promote when the challenger beats the majority-class baseline on the metric (when given)
    and either there is no champion or challenger >= champion - margin. An undefined (NaN)
    challenger figure never promotes."""
    name = FIGURE_NAMES.get(metric, metric)
    if majority is not None and not challenger > majority:
        stays = "no champion yet, none is set" if champion is None else "the champion stays"
        return Decision(False, f"{name} {challenger:.4f} does not beat the majority-class baseline "
                               f"{majority:.4f}: the challenger is refused ({stays})")
    beats = f" (majority-class baseline {majority:.4f})" if majority is not None else ""
    if champion is None:
        return Decision(True, f"no champion yet; {name} {challenger:.4f}{beats}")
    if challenger >= champion - margin:
        return Decision(True, f"{name} {challenger:.4f} >= champion {champion:.4f} - margin {margin}{beats}")
    return Decision(False, f"{name} {challenger:.4f} < champion {champion:.4f} - margin {margin}{beats}")


def gate_not_evaluated(champion_version: str | None, why: str = NOT_EVALUATED) -> Decision:
    """No holdout figure: without a champion the model becomes champion unevaluated; a champion
    stays."""
    if champion_version is None:
        return Decision(True, f"{why}; no champion yet: the model becomes champion without evaluation")
    return Decision(False, f"{why}; the champion (version {champion_version}) stays")


def champion_vs_baseline(version: str | None, value: float, majority: float, metric: str) -> str:
    """One sentence: the champion after the gate against the majority-class baseline."""
    name = FIGURE_NAMES.get(metric, metric)
    if version is None:
        return "no champion"
    if np.isnan(value):
        return f"the champion (version {version}) has no {name} on this holdout"
    if value > majority:
        return f"the champion (version {version}) beats the majority-class baseline: {name} {value:.4f} > {majority:.4f}"
    return (f"WARNING: the champion (version {version}) is no better than always answering the most common "
            f"class: {name} {value:.4f} <= majority-class baseline {majority:.4f}")


def not_evaluated_rows(version: str, champion: str | None, decision: Decision, evaluated_at: datetime,
                       holdout_rows: int = 0) -> pd.DataFrame:
    """The one row of training.evaluation that records a gate without holdout figures."""
    table = pd.DataFrame([("overall", "all", "rows", float(holdout_rows))],
                         columns=["slice", "slice_value", "metric", "value"])
    return _rows(table, version, champion, decision, evaluated_at)


def evaluation_rows(
    challenger: Scored, champion: Scored | None, decision: Decision, evaluated_at: datetime
) -> pd.DataFrame:
    """Rows of `training.evaluation`: the challenger's table, plus the champion's overall figures
    as `champion_<metric>` (both scored on the same holdout)."""
    table = challenger.table.copy()
    if champion is not None:
        overall = champion.table[(champion.table["slice"] == "overall")
                                 & ~champion.table["metric"].str.startswith("baseline_")].copy()
        overall["metric"] = "champion_" + overall["metric"]
        table = pd.concat([table, overall], ignore_index=True)
    return _rows(table, challenger.version, champion.version if champion is not None else None, decision,
                 evaluated_at)


def _rows(table: pd.DataFrame, version: str, champion: str | None, decision: Decision,
          evaluated_at: datetime) -> pd.DataFrame:
    table = table.copy()
    table.insert(0, "model_version", version)
    table["champion_version"] = champion
    table["decision"] = decision.name
    table["evaluated_at"] = evaluated_at
    table["value"] = table["value"].astype("float64")
    return table[COLUMNS]


def slice_overview(scored: Scored) -> pd.DataFrame:
    """The metric table pivoted for people: one row per slice value, one column per metric
    (the per-class rows and the baselines left out: `class_overview` and the metadata show them)."""
    t = scored.table
    t = t[(t["slice"] != CLASS_SLICE) & ~t["metric"].str.startswith("baseline_")]
    wide = t.pivot_table(
        index=["slice", "slice_value"], columns="metric", values="value", aggfunc="first", sort=False
    ).reset_index()
    wide.columns.name = None
    return wide


def class_overview(scored: Scored) -> pd.DataFrame:
    """Precision, recall, F1 and support of each class on the holdout, one row per class."""
    t = scored.table[scored.table["slice"] == CLASS_SLICE]
    wide = t.pivot_table(index="slice_value", columns="metric", values="value", aggfunc="first", sort=False)
    wide = wide.reset_index().rename(columns={"slice_value": "class"})
    wide.columns.name = None
    return wide[["class", *[c for c in ("precision", "recall", "f1", "support") if c in wide.columns]]]


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
