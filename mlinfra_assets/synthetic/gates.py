"""The three gates on candidate synthetic rows, and their verdict as one long table (Dagster-free).

Quality and privacy decide (`Verdict.problems`); utility is measured and reported only. The
verdict rows (`metric = 'gate'`) are what `synthetic_rows` reads before it publishes the
candidates: `property = 'Passed'` (score 1/0, `column_name` = a fingerprint of the candidate
rows it judged) and one `property = 'Problem'` row per reason the rows failed (`column_name` =
the reason). Candidates that were never judged (a crash between sampling and judging) match no
verdict. A failed or missing verdict withholds the rows from training; it never stops training.
"""

from __future__ import annotations

import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.synthetic import data, privacy, quality, sampling, utility
from mlinfra_assets.synthetic.quality import QUALITY_ROWS
from mlinfra_assets.synthetic.synthesizer import Model

GATE_METRIC, GATE_PROPERTY, PROBLEM_PROPERTY = "gate", "Passed", "Problem"
VERDICT_SQL = "SELECT score, column_name FROM synthetic.synthetic_quality WHERE metric = ? AND property = ?"
FINGERPRINT_SQL = (
    f"SELECT coalesce(bit_xor(hash(c)), 0)::VARCHAR || '-' || count(*) FROM {data.CANDIDATES_TABLE} AS c"
)
WITHHELD = "synthetic rows withheld from training"


@dataclass(frozen=True)
class Sampled:
    """What sampling the candidates gave: rows sampled, copies dropped, the class plan."""

    plan: sampling.ClassPlan
    sampled: int = 0  # rows the synthesizer returned
    dropped: int = 0  # rows equal to a real row, dropped before the candidates table
    fit_copies: int = 0  # rows equal to a fit row (counted before dropping)

    @property
    def copy_share(self) -> float:
        return self.fit_copies / self.sampled if self.sampled else float("nan")


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
    tracebacks: list[str] = field(default_factory=list)  # of figures that could not be measured (logs)

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


def _gate_rows(problems: list[str], judged: str) -> pd.DataFrame:
    return pd.DataFrame([
        _row(GATE_METRIC, GATE_PROPERTY, not problems, judged),
        *(_row(GATE_METRIC, PROBLEM_PROPERTY, 0, p) for p in problems),
    ])


def judge(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, model: Model, fit_rows: pd.DataFrame,
          sampled: Sampled) -> Verdict:
    """Judge the candidate rows in `synthetic.candidate_rows`.

    A gate that cannot be measured (e.g. the holdout has no row of a sampled class) fails,
    with the reason; a utility figure that cannot be measured is a note.

    Parameters
    ----------
    con
        A (read-only) warehouse connection.
    model
        The synthesizer that sampled the candidates (its metadata; TSTR samples from it).
    fit_rows
        The rows it was fit on (features and `_label` as class names).
    sampled
        The class plan and the counts of sampling (the exact-copy share).
    """
    frames, judged = data.gate_frames(con, spec, QUALITY_ROWS), fingerprint(con)
    compared = {"synthetic": len(frames.synthetic), "real": len(frames.real), "holdout": len(frames.holdout)}
    if sampled.plan.problem:
        problems = [sampled.plan.problem]
        scores = pd.concat([pd.DataFrame([_row("summary", "Synthetic Rows", 0)]), _gate_rows(problems, judged)])
        return Verdict(scores.reset_index(drop=True), problems, compared, notes=["nothing sampled"])
    if frames.synthetic.empty:  # no class to rebalance: nothing sampled, nothing to judge
        scores = pd.concat([pd.DataFrame([_row("summary", "Synthetic Rows", 0)]), _gate_rows([], judged)])
        return Verdict(scores.reset_index(drop=True), [], compared, notes=["no candidate rows: nothing to judge"])
    metadata, seconds = model.metadata(), {}
    parts, problems, notes, tracebacks = [], [], [], []
    q = p = u = None
    with _timed(seconds, "quality"):
        try:
            q = quality.evaluate(frames.real, frames.synthetic, fit_rows, metadata)
        except ValueError as exc:
            problems.append(f"quality not measured: {exc}")
    with _timed(seconds, "privacy"):
        try:
            p = privacy.evaluate(
                frames.synthetic, fit_rows, frames.holdout, metadata, frames.exact_matches,
                spec.synthetic.privacy.rows, sampled.copy_share, spec.feature_columns,
            )
        except ValueError as exc:
            problems.append(f"privacy not measured: {exc}")
    if q is not None:
        problems += q.problems(spec.synthetic.quality_threshold)
        parts.append(q.scores)
    if p is not None:
        problems += p.problems(spec.synthetic.privacy.min_dcr_ratio)
        parts.append(p.scores())
    if not spec.synthetic.utility:
        notes.append("utility not measured: synthetic.utility is off")
    elif spec.gold is None:
        notes.append("utility not measured: gold labels missing (the spec has no `gold:` section)")
    else:
        with _timed(seconds, "utility"):
            try:
                u = measure_utility(con, spec, model, fit_rows, problems)
                parts.append(u.scores())
            except Exception as exc:  # noqa: BLE001 - reported only: its failure must not stop the rows
                notes.append(f"utility not measured: {type(exc).__name__}: {exc}")
                tracebacks.append(traceback.format_exc())
    parts.append(_gate_rows(problems, judged))
    scores = pd.concat(parts, ignore_index=True)[quality.COLUMNS]
    return Verdict(scores, problems, compared, q, p, u, notes, seconds, tracebacks)


def measure_utility(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, model: Model,
                    fit_rows: pd.DataFrame, problems: list[str] | None = None) -> utility.UtilityResult:
    """TSTR vs TRTR on the gold holdout, and the platform's model with and without the candidates,
    on the spec's metric over the sampled classes (`utility.sampled_score`). With `problems` (the
    quality and privacy gates withhold the candidates) the model figures are not measured, and
    `model_note` says why."""
    holdout = utility.holdout_frame(con, spec)
    if holdout.empty:
        raise ValueError(
            f"the holdout of {spec.raw_table} has no row with a gold label: utility is undefined; raise "
            "training.holdout_percent or set synthetic.utility: false"
        )
    synthetic_train = sampling.sample_rows(model, spec, len(fit_rows))
    tstr, trtr = utility.tstr(synthetic_train, fit_rows, holdout, spec)
    if problems:
        note = f"not measured: the gates withhold the candidates ({'; '.join(problems)})"
        return utility.UtilityResult(tstr, trtr, None, None, len(holdout), len(fit_rows), metric=spec.metric,
                                     model_note=note)
    training, rows = utility.training_frame(con, spec, data.CANDIDATES_TABLE)
    without, with_ = utility.model_f1(training, holdout, spec)
    return utility.UtilityResult(tstr, trtr, without, with_, len(holdout), len(fit_rows), metric=spec.metric,
                                 model_rows=rows)


def verdict(con: duckdb.DuckDBPyConnection) -> bool | None:
    """The stored gate verdict on the current candidate rows (None when there is none for them)."""
    try:
        rows = con.execute(VERDICT_SQL, [GATE_METRIC, GATE_PROPERTY]).fetchall()
        current = fingerprint(con)
    except duckdb.CatalogException:
        return None
    return bool(rows[0][0]) if rows and rows[0][1] == current else None


def problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The reasons stored with the last verdict (empty when it passed or there is none)."""
    try:
        return [r for (_, r) in con.execute(VERDICT_SQL, [GATE_METRIC, PROBLEM_PROPERTY]).fetchall()]
    except duckdb.CatalogException:
        return []


def withheld_reason(con: duckdb.DuckDBPyConnection) -> str | None:
    """Why the current candidate rows are kept out of `synthetic.synthetic_rows` (None: they may
    be published): "synthetic rows withheld from training: overall quality 0.412 < ...", or
    "...: no gate verdict for the current candidate rows" (none stored, or not about them)."""
    passed = verdict(con)
    if passed is True:
        return None
    if passed is None:
        return (f"{WITHHELD}: no gate verdict for the current candidate rows "
                "(re-materialize synthetic/synthetic_quality)")
    return f"{WITHHELD}: " + "; ".join(problems(con) or ["the gate failed"])
