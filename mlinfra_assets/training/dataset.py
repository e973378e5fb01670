"""The training set in SQL: gold + weak + synthetic rows, soft targets, weights, provenance.

Dagster-free: functions take a DuckDB connection and the spec. Identifiers put into SQL text
come from the validated spec; values (the source weights) are bound parameters.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from mlinfra_assets.holdout import evaluation_labels, holdout_predicate
from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec, class_column
from mlinfra_assets.training.batches import (
    LABEL,
    ROW_ID,
    SOURCE,
    SOURCES,
    WEIGHT,
    Recent,
    TrainingArrays,
    stream_arrays,
    target_columns,
)

TABLE = "training.training_set"
PREDICTIONS = "monitoring.predictions"  # the champion's scores (monitoring.scoring.TABLE)
UPSTREAM_TABLES = ("labeling.weak_labels", "labeling.gold_labels", "synthetic.synthetic_rows")
_SQL = Path(__file__).parent / "sql"
__all__ = ["LABEL", "ROW_ID", "SOURCE", "WEIGHT", "target_columns"]  # the platform's columns, re-exported


def sql(name: str, **identifiers: str) -> str:
    """Load `sql/<name>.sql` and fill its `{placeholders}` with identifiers (never values)."""
    return (_SQL / f"{name}.sql").read_text().format(**identifiers)


def feature_select(spec: DatasetSpec, alias: str) -> str:
    """Feature columns with stable types: numerics as DOUBLE, categoricals as VARCHAR."""
    cols = [f"CAST({alias}.{c} AS DOUBLE) AS {c}" for c in spec.numeric]
    cols += [f"CAST({alias}.{c} AS VARCHAR) AS {c}" for c in spec.categorical]
    return ", ".join(cols)


def _onehot(spec: DatasetSpec, label_expr: str) -> str:
    return ", ".join(
        f"CASE WHEN {label_expr} = {i} THEN 1.0 ELSE 0.0 END::DOUBLE AS {col}"
        for i, col in enumerate(target_columns(spec))
    )


def require_tables(
    con: duckdb.DuckDBPyConnection, tables: tuple[str, ...] | list[str],
    hint: str = "materialize the labeling and synthetic assets first",
) -> None:
    """Raise naming every upstream table that does not exist yet."""
    present = {
        f"{s}.{t}"
        for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
    }
    missing = [t for t in tables if t not in present]
    if missing:
        raise LookupError(
            f"training needs {', '.join(missing)}, which does not exist in the warehouse: {hint}"
        )


def source_weights(spec: DatasetSpec) -> list[float]:
    """The weights of gold, weak and synthetic rows, in that order (spec.training.weights)."""
    weights = spec.training.weights
    missing = [s for s in SOURCES if s not in weights]
    if missing:
        raise ValueError(f"training.weights has no entry for {missing}: set a weight for each of {SOURCES}")
    bad = [s for s in SOURCES if weights[s] < 0]
    if bad:
        raise ValueError(f"training.weights {bad} are negative: weights must be >= 0")
    return [float(weights[s]) for s in SOURCES]


def training_set_sql(spec: DatasetSpec) -> str:
    """The SELECT that builds `training.training_set` (three ? parameters: source weights):
    `_row_id`, the features, `_prob_<class>` soft targets, `_label`, `_weight`, `_source`."""
    targets = target_columns(spec)
    return sql(
        "training_set",
        id=spec.id_column,
        raw_table=spec.raw_table,
        raw_features=feature_select(spec, "r"),
        syn_features=feature_select(spec, "s"),
        holdout=holdout_predicate(spec, f"r.{spec.id_column}"),
        onehot_gold=_onehot(spec, "g.label"),
        onehot_syn=_onehot(spec, f"s.{LABEL}"),
        weak_probs=", ".join(f"CAST(w.{c} AS DOUBLE) AS {t}" for c, t in zip(spec.prob_columns, targets, strict=True)),
        last_class=str(spec.n_classes - 1),
    )


def holdout_sql(spec: DatasetSpec) -> str:
    """The SELECT of holdout rows: `_row_id`, features, `_label` (class index) from
    `holdout.evaluation_labels` (gold labels, or without gold the human annotations)."""
    return sql(
        "holdout_rows",
        id=spec.id_column,
        raw_table=spec.raw_table,
        raw_features=feature_select(spec, "r"),
        labels_sql=evaluation_labels(spec),
        holdout=holdout_predicate(spec, f"r.{spec.id_column}"),
        last_class=str(spec.n_classes - 1),
    )


def build(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> int:
    """Replace `training.training_set` in one transaction; an empty result is rolled back.

    Raises
    ------
    LookupError
        when an upstream table is missing (named).
    ValueError
        when the training set would be empty (the previous version stays).
    """
    require_tables(con, [spec.raw_table, *UPSTREAM_TABLES])
    select = training_set_sql(spec)
    weights = source_weights(spec)
    with transaction(con):
        con.execute("CREATE SCHEMA IF NOT EXISTS training")
        con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS {select}", weights)
        rows = int(con.execute(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0])
        if rows == 0:
            raise ValueError(
                f"{TABLE} would be empty: labeling.weak_labels, labeling.gold_labels and "
                f"synthetic.synthetic_rows have no labelled row outside the holdout of {spec.raw_table}"
            )
    return rows


def load(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> TrainingArrays:
    """The training set streamed from DuckDB in Arrow record batches, encoded as arrays."""
    require_tables(con, [TABLE], hint="materialize training/training_set first")
    return stream_arrays(con, spec, sql("training_rows"))


def data_version(con: duckdb.DuckDBPyConnection, table: str = TABLE) -> str:
    """A fingerprint of the table's contents computed in SQL (same rows -> same version)."""
    return str(con.execute(sql("data_version", table=table)).fetchall()[0][0])


def training_window(con: duckdb.DuckDBPyConnection, spec: DatasetSpec,
                    columns: tuple[str, str] = ("_row_id", "_source")) -> tuple[str, str] | None:
    """(first, last) `_partition` of the raw rows behind the training set's real (non-synthetic)
    rows, as text (a date, or a batch number): the window a model trained on it has seen, the
    drift reference of that model. None when the training set holds no real row (or the raw
    table has no partitions, as a table written by hand). `columns`: the training set's row id
    and provenance columns (older training sets: `row_id, source`)."""
    if not _has_column(con, spec.raw_table, "_partition"):
        return None
    first, last = con.execute(
        f"SELECT min(_partition), max(_partition) FROM {spec.raw_table} "
        f"WHERE CAST({spec.id_column} AS VARCHAR) IN "
        f"(SELECT CAST({columns[0]} AS VARCHAR) FROM {TABLE} WHERE {columns[1]} <> 'synthetic')"
    ).fetchall()[0]
    return None if first is None else (str(first), str(last))


def recent_rows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, limit: int = 20_000) -> Recent:
    """The latest `training.recent_partitions` partitions the champion scored: the mean of its
    calibrated positive probability over all their rows (the positive share it expects there)
    and a seeded sample of at most `limit` of their raw non-holdout rows (features). Two
    classes only; otherwise, or without such partitions, a `Recent` with no rows that says why."""
    n = spec.training.recent_partitions
    if spec.n_classes != 2 or n == 0:
        return Recent.none("not capped: " + ("training.recent_partitions is 0" if n == 0 else
                                             f"{spec.n_classes} classes take the argmax"))
    calibrated = spec.calibrated_columns[spec.positive_index]
    unscored = Recent.none(f"not capped: no calibrated predictions in {PREDICTIONS} yet (no champion scored a partition)")
    if not _has_column(con, spec.raw_table, "_partition"):
        return Recent.none(f"not capped: {spec.raw_table} has no partitions")
    if not _has_column(con, PREDICTIONS, calibrated):
        return unscored
    partitions = [p for (p,) in con.execute(
        f"SELECT DISTINCT _partition FROM {PREDICTIONS} WHERE {calibrated} IS NOT NULL "
        "ORDER BY _partition DESC LIMIT ?", [n]).fetchall()]
    if not partitions:
        return unscored
    share, scored = con.execute(
        f"SELECT avg({calibrated}), count(*) FROM {PREDICTIONS} "
        f"WHERE _partition IN (SELECT unnest(?)) AND {calibrated} IS NOT NULL", [partitions]).fetchall()[0]
    rows = con.execute(sql("recent_rows", id=spec.id_column, raw_features=feature_select(spec, "r"),
                           raw_table=spec.raw_table, holdout=holdout_predicate(spec, f"r.{spec.id_column}")),
                       [partitions, str(spec.training.seed), limit]).df()
    first, last = min(partitions), max(partitions)
    span = str(first) if first == last else f"{first} .. {last}"
    return Recent(rows, float(share), f"partitions {span} ({scored:,} rows scored by the champion)")


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    schema, name = table.split(".")
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "AND column_name = ?", [schema, name, column]).fetchall()[0][0])


def frame_version(frame: pd.DataFrame) -> str:
    """A fingerprint of a DataFrame's rows (the evaluated holdout: same rows -> same version)."""
    import hashlib

    digest = hashlib.md5(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def class_balance(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> pd.DataFrame:
    """Per source: rows, weight, hard-label counts (`n_<class>`) and weighted soft mass
    (`mass_<class>`), the class as its column suffix (`spec.class_column`)."""
    per_class = ", ".join(
        f"count(*) FILTER (WHERE {LABEL} = {i}) AS n_{class_column(c)}, sum({WEIGHT} * {t}) AS mass_{class_column(c)}"
        for i, (c, t) in enumerate(zip(spec.classes, target_columns(spec), strict=True))
    )
    return con.execute(sql("class_balance", per_class=per_class)).df()


def raw_example(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, rows: int = 5) -> pd.DataFrame:
    """A few raw feature rows with the raw table's own types: the model's input example."""
    features = ", ".join(spec.feature_columns)
    return con.execute(
        f"SELECT {features} FROM {spec.raw_table} ORDER BY {spec.id_column} LIMIT ?", [rows]
    ).df()
