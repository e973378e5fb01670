"""The three gates on candidate synthetic rows, and their verdict as one long table (Dagster-free).

Quality and privacy block (`Verdict.problems`); utility is measured and reported only. The
verdict row (`metric = 'gate', property = 'Passed'`, `column_name` = a fingerprint of the
candidate rows it judged) is what `synthetic_rows` reads before it publishes the candidates:
candidates that were never judged (a crash between sampling and judging) match no verdict.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.synthetic import data, privacy, quality, sampling, utility
from mlinfra_assets.synthetic.quality import QUALITY_ROWS
from mlinfra_assets.synthetic.synthesizer import Model

GATE_METRIC, GATE_PROPERTY = "gate", "Passed"
VERDICT_SQL = "SELECT score, column_name FROM synthetic.synthetic_quality WHERE metric = ? AND property = ?"
FINGERPRINT_SQL = (
    f"SELECT coalesce(bit_xor(hash(c)), 0)::VARCHAR || '-' || count(*) FROM {data.CANDIDATES_TABLE} AS c"
)


@dataclass
class Verdict:
    scores: pd.DataFrame  # metric, property, column_name, score
    problems: list[str]
    compared: dict[str, int]  # synthetic / real / holdout rows compared
    quality: quality.QualityResult | None = None
    privacy: privacy.PrivacyResult | None = None
    utility: utility.UtilityResult | None = None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per gate

    @property
    def passed(self) -> bool:
        return not self.problems


def _row(metric: str, prop: str, score: float, column: str | None = None) -> dict:
    return {"metric": metric, "property": prop, "column_name": column, "score": float(score)}


def fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A hash of every candidate row and their count: which candidates a verdict is about."""
    return con.execute(FINGERPRINT_SQL).fetchall()[0][0]


@contextmanager
def _timed(seconds: dict[str, float], name: str):  # noqa: ANN202 - a context manager
    start = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - start, 3)


def judge(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, model: Model, fit_rows: pd.DataFrame) -> Verdict:
    """Judge the candidate rows in `synthetic.candidate_rows`.

    Parameters
    ----------
    con
        A (read-only) warehouse connection.
    model
        The synthesizer that sampled the candidates (its metadata; TSTR samples from it).
    fit_rows
        The rows it was fit on (features and `label` as class names).
    """
    frames, judged = data.gate_frames(con, spec, QUALITY_ROWS), fingerprint(con)
    compared = {"synthetic": len(frames.synthetic), "real": len(frames.real), "holdout": len(frames.holdout)}
    if frames.synthetic.empty:  # no class to rebalance: nothing sampled, nothing to judge
        scores = pd.DataFrame([_row("summary", "Synthetic Rows", 0), _row(GATE_METRIC, GATE_PROPERTY, 1, judged)])
        return Verdict(scores, [], compared, notes=["no candidate rows: nothing to judge"])
    metadata, seconds = model.metadata(), {}
    with _timed(seconds, "quality"):
        q = quality.evaluate(frames.real, frames.synthetic, fit_rows, metadata)
    with _timed(seconds, "privacy"):
        p = privacy.evaluate(
            frames.synthetic, fit_rows, frames.holdout, metadata, frames.exact_matches, spec.synthetic.privacy.rows
        )
    problems = q.problems(spec.synthetic.quality_threshold) + p.problems(spec.synthetic.privacy.min_dcr_ratio)
    parts, notes, u = [q.scores, p.scores()], [], None
    if spec.synthetic.utility and spec.gold is not None:
        with _timed(seconds, "utility"):
            u = measure_utility(con, spec, model, fit_rows)
        parts.append(u.scores())
    else:
        notes.append("utility not measured: " + ("synthetic.utility is off" if spec.gold is not None
                                                 else "the spec has no gold labels for the holdout"))
    parts.append(pd.DataFrame([_row(GATE_METRIC, GATE_PROPERTY, not problems, judged)]))
    scores = pd.concat(parts, ignore_index=True)[quality.COLUMNS]
    return Verdict(scores, problems, compared, q, p, u, notes, seconds)


def measure_utility(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, model: Model,
                    fit_rows: pd.DataFrame) -> utility.UtilityResult:
    """TSTR vs TRTR on the oracle holdout, and the platform's model F1 with and without candidates."""
    holdout = utility.holdout_frame(con, spec)
    if holdout.empty or not (holdout[data.LABEL] == spec.positive_index).any():
        raise ValueError(
            f"the holdout of {spec.raw_table} has no gold row of class {spec.classes[spec.positive_index]!r}: "
            "utility is undefined; raise training.holdout_percent or set synthetic.utility: false"
        )
    synthetic_train = sampling.sample_rows(model, spec, len(fit_rows))
    tstr_f1, trtr_f1 = utility.tstr(synthetic_train, fit_rows, holdout, spec)
    without, with_ = utility.model_f1(utility.training_frame(con, spec, data.CANDIDATES_TABLE), holdout, spec)
    return utility.UtilityResult(tstr_f1, trtr_f1, without, with_, len(holdout), len(fit_rows))


def verdict(con: duckdb.DuckDBPyConnection) -> bool | None:
    """The stored gate verdict on the current candidate rows (None when there is none for them)."""
    try:
        rows = con.execute(VERDICT_SQL, [GATE_METRIC, GATE_PROPERTY]).fetchall()
        current = fingerprint(con)
    except duckdb.CatalogException:
        return None
    return bool(rows[0][0]) if rows and rows[0][1] == current else None

