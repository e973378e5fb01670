"""SQL files of the labeling stage, loaded by relative path.

Only identifiers from the validated spec are formatted into the text (`{id_column}`,
`{raw_table}`); values are always bound as `?` parameters.
"""

from pathlib import Path

from mlinfra_assets.holdout import holdout_predicate, queue_skips_holdout

SQL_DIR = Path(__file__).parent / "sql"
POOL_BUCKETS = 1_000_000  # pool.sql keeps rows with hash(row id, seed) % POOL_BUCKETS < keep
WHOLE_POOL = [0, POOL_BUCKETS]  # pool.sql's parameters (seed, keep) for every row that may be queued


def load_sql(name: str, **identifiers: str) -> str:
    """The text of `sql/<name>.sql` with the spec's identifiers filled in."""
    return (SQL_DIR / f"{name}.sql").read_text().format(**identifiers)


def sql_identifiers(spec, features: list[str] | None = None) -> dict[str, str]:  # noqa: ANN001 - DatasetSpec
    """What the labeling SQL files need from the spec: id column, raw table, the feature list
    (`features`, default the spec's), the holdout predicate over `r`, the one the queue's pool
    leaves out (`pool_holdout`: the holdout with gold; nothing without gold, as the holdout
    is then made of annotated rows), and pool.sql's bucket count."""
    holdout = holdout_predicate(spec, f"r.{spec.id_column}")
    return {
        "id_column": spec.id_column,
        "raw_table": spec.raw_table,
        "features": ", ".join(f"r.{c}" for c in (spec.feature_columns if features is None else features)),
        "holdout": holdout,
        "pool_holdout": holdout if queue_skips_holdout(spec) else "false",
        "buckets": str(POOL_BUCKETS),
    }
