"""The real rows the synthetic stage learns from: labeled, outside the holdout, stratified.

Only identifiers from the validated spec are put into SQL text; values are bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

from mlinfra_assets.holdout import holdout_predicate
from mlinfra_assets.spec import DatasetSpec

SQL_DIR = Path(__file__).parent / "sql"
LABEL = "_label"  # class index in tables, class name in the frames the synthesizer sees
ROW_ID = "_row_id"
SYNTHETIC_ID = "_synthetic_id"
VERSION = "_synthesizer_version"
ROWS_TABLE = "synthetic.synthetic_rows"
CANDIDATES_TABLE = "synthetic.candidate_rows"  # sampled, not yet through the gates
FIT_SALT = "synthesizer-fit"
REAL_SAMPLE_SALT = "quality-real-sample"


@cache
def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def labeled_sql(spec: DatasetSpec, holdout: bool = False) -> str:
    """SELECT of `_row_id, <features>, _label` for every labeled real row outside the holdout
    (inside it with `holdout=True`: rows the synthesizer never saw)."""
    predicate = holdout_predicate(spec, f"r.{spec.id_column}")
    return _sql("labeled_rows").format(
        id=spec.id_column,
        features=", ".join(f"r.{c}" for c in spec.feature_columns),
        raw=spec.raw_table,
        probs=", ".join(f"w.{c}" for c in spec.prob_columns),
        where_holdout=predicate if holdout else f"NOT {predicate}",
    )


def match_predicate(spec: DatasetSpec, left: str = "s", right: str = "r") -> str:
    """SQL predicate: every feature of `left` equals the same feature of `right` (NULL = NULL)."""
    return " AND ".join(f"{left}.{c} IS NOT DISTINCT FROM {right}.{c}" for c in spec.feature_columns)


def synthetic_rows_sql(spec: DatasetSpec) -> str:
    """SELECT over staged parquet batches that drops exact copies of real rows."""
    return _sql("synthetic_rows").format(raw=spec.raw_table, match=match_predicate(spec))


def fit_copies_sql(spec: DatasetSpec) -> str:
    """SELECT count(*) of staged rows (parquet files, ?) equal to a fit row (parquet file, ?)."""
    return _sql("fit_copies").format(match=match_predicate(spec))


def exact_matches_sql(spec: DatasetSpec, table: str = CANDIDATES_TABLE) -> str:
    """SELECT count(*) of rows of `table` identical to a real row on every feature."""
    return _sql("exact_matches").format(table=table, raw=spec.raw_table, match=match_predicate(spec))


def class_counts(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> dict[int, int]:
    """Labeled real rows (outside the holdout) per class index; every class of the spec is a key.

    Raises
    ------
    ValueError
        When there is no labeled row at all, or a label is not a class index of the spec.
    """
    rows = con.execute(
        f"SELECT {LABEL}, count(*) FROM ({labeled_sql(spec)}) GROUP BY {LABEL} ORDER BY {LABEL}"
    ).fetchall()
    counts = {i: 0 for i in range(spec.n_classes)}
    for label, n in rows:
        if label not in counts:
            raise ValueError(
                f"label {label} in labeling.weak_labels/gold_labels is not a class index of "
                f"classes {spec.classes}: re-materialize the labeling stage for this spec"
            )
        counts[int(label)] = int(n)
    if sum(counts.values()) == 0:
        raise ValueError(
            f"no labeled rows outside the holdout in {spec.raw_table}: materialize "
            "labeling/weak_labels (and raw) first"
        )
    return counts


def minority_classes(counts: dict[int, int], target_share: float) -> list[int]:
    """Class indexes whose share of the labeled rows is under `target_share`."""
    total = sum(counts.values())
    return [c for c, n in counts.items() if n / total < target_share]


def fit_quotas(counts: dict[int, int], budget: int, target_share: float) -> dict[int, int]:
    """Rows to draw per class for fitting, at most `budget` in all.

    With minority classes (share under `target_share`), the sample is balanced: each
    minority class gives all its rows up to `budget / n_classes`, and every other class
    as many rows as the largest minority quota. The Gaussian copula learns the label only
    through correlations, and conditioning on a class moves the other columns most when the
    classes are balanced (measured on the 200k demo: quality 0.85 -> 0.89 against a
    minority-gets-half-the-budget sample). Without minority classes: proportional.

    Examples
    --------
    >>> fit_quotas({0: 9800, 1: 200}, budget=1000, target_share=0.1)
    {1: 200, 0: 200}
    """
    if budget <= 0:
        raise ValueError(f"synthetic.fit_rows is {budget}: set it to a positive number of rows")
    minority = minority_classes(counts, target_share)
    total = sum(counts.values())
    if not minority:
        return dict(counts) if total <= budget else {c: budget * n // total for c, n in counts.items()}
    cap = budget // len(counts)
    quotas = {c: min(counts[c], cap) for c in minority}
    balanced = max(quotas.values())
    quotas.update({c: min(n, balanced) for c, n in counts.items() if c not in quotas})
    return quotas


def stratified_frame(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, quotas: dict[int, int], salt: str, holdout: bool = False
) -> pd.DataFrame:
    """Labeled rows drawn per class by `quotas` (deterministic for a salt), ordered by row id.

    The label column holds class names (what the synthesizer sees), not indexes.
    """
    per_class = [int(quotas.get(i, 0)) for i in range(spec.n_classes)]
    sql = _sql("stratified_sample").format(labeled=labeled_sql(spec, holdout))
    frame = con.execute(sql, [salt, per_class]).df()
    frame[LABEL] = frame[LABEL].map(dict(enumerate(spec.classes)))
    return frame


def empty_rows_sql(spec: DatasetSpec) -> str:
    """SELECT of a typed, empty synthetic rows table (nothing to rebalance, or rows withheld)."""
    return _sql("empty_synthetic_rows").format(
        features=", ".join(f"r.{c}" for c in spec.feature_columns), raw=spec.raw_table
    )


def mix_quotas(mix: dict[int, int], available: dict[int, int]) -> dict[int, int]:
    """Per-class quotas with the class proportions of `mix`, scaled down to what is available.

    Examples
    --------
    >>> mix_quotas({1: 1000}, {0: 9000, 1: 300})
    {1: 300}
    """
    wanted = {c: n for c, n in mix.items() if n > 0}
    if not wanted:
        return {}
    scale = min(1.0, *(available.get(c, 0) / n for c, n in wanted.items()))
    return {c: int(n * scale) for c, n in wanted.items()}


@dataclass(frozen=True)
class Frames:
    """What the gates compare (label as class names)."""

    synthetic: pd.DataFrame  # up to `limit` candidate rows (a deterministic sample)
    real: pd.DataFrame  # labeled real rows outside the holdout with the same class mix
    holdout: pd.DataFrame  # labeled holdout rows (never fit on) with the same class mix
    versions: list[str]  # synthesizer versions found in the candidate rows
    exact_matches: int  # candidate rows (all of them) equal to a real row on every feature


def gate_frames(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, limit: int) -> Frames:
    """Read the candidate rows and the real rows they are judged against."""
    synthetic = con.execute(
        f"SELECT * EXCLUDE ({SYNTHETIC_ID}, {VERSION}) FROM {CANDIDATES_TABLE} "
        f"ORDER BY hash({SYNTHETIC_ID}), {SYNTHETIC_ID} LIMIT ?",
        [limit],
    ).df()
    versions = [v for (v,) in con.execute(f"SELECT DISTINCT {VERSION} FROM {CANDIDATES_TABLE}").fetchall()]
    exact = int(con.execute(exact_matches_sql(spec)).fetchall()[0][0])
    mix = {int(c): int(n) for c, n in synthetic[LABEL].value_counts().items()}
    real = stratified_frame(con, spec, mix_quotas(mix, class_counts(con, spec)), REAL_SAMPLE_SALT)
    holdout = stratified_frame(con, spec, mix, REAL_SAMPLE_SALT, holdout=True)
    synthetic[LABEL] = synthetic[LABEL].map(dict(enumerate(spec.classes)))
    return Frames(synthetic, real.drop(columns=[ROW_ID]), holdout.drop(columns=[ROW_ID]), versions, exact)
