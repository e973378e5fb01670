"""SDV quality and diagnostic reports as one long table (Dagster-free).

Only the columns the synthesizer models are judged (a constant, all-null or high-cardinality
column is filled outside SDV; see `columns.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlinfra_assets.synthetic.columns import TABLE
from mlinfra_assets.synthetic.data import LABEL

QUALITY_ROWS = 10_000  # synthetic rows compared (a deterministic sample beyond that)
COLUMNS = ["metric", "property", "column_name", "score"]


@dataclass(frozen=True)
class QualityResult:
    scores: pd.DataFrame  # metric, property, column_name, score
    overall: float
    validity: float
    per_column: pd.DataFrame  # column, shape_metric, shape, validity_metric, validity

    def problems(self, threshold: float) -> list[str]:
        """Why the rows must not reach training (empty when they may)."""
        found = []
        if not self.overall >= threshold:
            found.append(f"overall quality {self.overall:.3f} < synthetic.quality_threshold {threshold}")
        if not self.validity >= 1.0:
            found.append(f"diagnostic validity {self.validity:.3f} < 1.0")
        return found

    def property_score(self, metric: str, prop: str) -> float:
        rows = self.scores[
            (self.scores.metric == metric) & (self.scores.property == prop) & self.scores.column_name.isna()
        ]
        return float(rows.score.iloc[0])


def _properties(report: Any, metric: str) -> list[dict]:
    props = report.get_properties().dropna(subset=["Score"])
    return [
        {"metric": metric, "property": p, "column_name": None, "score": float(s)}
        for p, s in zip(props["Property"], props["Score"], strict=True)
    ]


def _columns(report: Any, metric: str, prop: str) -> pd.DataFrame:
    details = report.get_details(prop).dropna(subset=["Score"])
    if "Column" in details:
        names = details["Column"]
    else:
        names = details["Column 1"] + "|" + details["Column 2"]
    return pd.DataFrame(
        {"metric": metric, "property": prop, "column_name": names, "score": details["Score"].astype(float),
         "sdmetric": details["Metric"]}
    )


def evaluate(real: pd.DataFrame, synthetic: pd.DataFrame, reference: pd.DataFrame, metadata: Any) -> QualityResult:
    """Compare synthetic rows with real rows of the same class mix.

    Parameters
    ----------
    real
        Real rows with the synthetic rows' class mix: the quality report's reference.
    synthetic
        The synthetic rows (features and `_label` as class names).
    reference
        The rows the synthesizer was fit on: the diagnostic's reference (valid ranges and
        categories).
    metadata
        The synthesizer's SDV metadata. The label is left out of the quality report when the
        synthetic rows hold a single class (it would score a trivial 1.0).
    """
    from sdv.evaluation import evaluate_quality, run_diagnostic

    if synthetic.empty or real.empty:
        raise ValueError("quality needs synthetic and real rows: one of them is empty")
    modeled = list(metadata.tables[TABLE].columns)
    real, synthetic, reference = real[modeled], synthetic[modeled], reference[modeled]
    quality_md = metadata.copy()
    quality_real, quality_syn = real, synthetic
    if synthetic[LABEL].nunique() == 1:
        quality_md.remove_column(LABEL, TABLE)
        quality_real, quality_syn = real.drop(columns=[LABEL]), synthetic.drop(columns=[LABEL])
    quality = evaluate_quality({TABLE: quality_real}, {TABLE: quality_syn}, quality_md, verbose=False)
    diagnostic = run_diagnostic({TABLE: reference}, {TABLE: synthetic}, metadata, verbose=False)

    shapes = _columns(quality, "quality", "Column Shapes")
    pairs = _columns(quality, "quality", "Column Pair Trends")
    validity = _columns(diagnostic, "diagnostic", "Data Validity")
    overall = {"metric": "quality", "property": "Overall", "column_name": None, "score": float(quality.get_score())}
    summary = pd.DataFrame(
        [overall, *_properties(quality, "quality"), *_properties(diagnostic, "diagnostic")]
    )
    scores = pd.concat([summary, shapes[COLUMNS], pairs[COLUMNS], validity[COLUMNS]], ignore_index=True)
    per_column = shapes.rename(columns={"column_name": "column", "score": "shape", "sdmetric": "shape_metric"})[
        ["column", "shape_metric", "shape"]
    ].merge(
        validity.rename(columns={"column_name": "column", "score": "validity", "sdmetric": "validity_metric"})[
            ["column", "validity_metric", "validity"]
        ],
        on="column",
        how="outer",
    )
    validity_score = summary.loc[summary.property == "Data Validity", "score"]
    return QualityResult(
        scores=scores,
        overall=float(quality.get_score()),
        validity=float(validity_score.iloc[0]) if len(validity_score) else float("nan"),
        per_column=per_column,
    )
