"""The analysts' views: what each one reads, and its SQL (in `sql/<name>.sql`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from mlinfra_assets import keys
from mlinfra_assets.spec import DatasetSpec

SQL = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class View:
    """One `analytics.<name>` view over the tables in `reads` (produced by the assets `deps`)."""

    name: str
    reads: tuple[str, ...]
    deps: tuple[dg.AssetKey, ...]
    description: str

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey(["analytics", self.name])

    def sql(self, spec: DatasetSpec) -> str:
        """The CREATE OR REPLACE VIEW statement; only identifiers from the spec are filled in."""
        raw_columns = ([spec.timestamp_column] if spec.timestamp_column else []) + spec.feature_columns
        binary = spec.n_classes == 2
        return (
            (SQL / f"{self.name}.sql")
            .read_text()
            .format(
                raw_table=spec.raw_table,
                id_column=spec.id_column,
                raw_columns=", ".join(f"r.{c}" for c in raw_columns),
                prob_columns=", ".join(f"p.{c}" for c in spec.prob_columns),
                class_names=class_list(spec.classes),
                positive_share=(
                    f"avg(CASE WHEN label = {int(spec.positive_index)} THEN 1.0 ELSE 0.0 END) "
                    "AS weak_positive_share," if binary else ""
                ),
                day="\n       _partition AS day," if spec.has_timestamp else "",
                day_note=f"{spec.source.cadence} windows; `day` is the same" if spec.has_timestamp else "batches",
            )
        )

    def example(self) -> str:
        """The example query written in the SQL file's header."""
        lines = (SQL / f"{self.name}.sql").read_text().splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("-- Example:"))
        query = [lines[start].removeprefix("-- Example:").strip()]
        query += [
            line.removeprefix("--").strip()
            for line in lines[start + 1 :]
            if line.startswith("--  ")
        ]
        return " ".join(query)


def class_list(classes: list[str]) -> str:
    """A SQL list literal of the class names (quotes doubled): views take no parameters."""
    return "[" + ", ".join("'" + c.replace("'", "''") + "'" for c in classes) + "]"


def views_for(spec: DatasetSpec) -> list[View]:
    return [
        View(
            "model_scores",
            ("monitoring.predictions", spec.raw_table),
            (keys.PREDICTIONS, keys.raw_key(spec)),
            "Every row the champion scored, with its raw features: _partition, _row_id, one "
            "prob_<class> per class, _prediction (class index), _predicted_class (its name), "
            "_confidence, _model_version, _scored_at, then the timestamp and the features.",
        ),
        View(
            "drift_history",
            ("monitoring.drift_report",),
            (keys.DRIFT_REPORT,),
            "One row per scored partition (_partition; `day` too with a timestamp): features "
            "checked and drifted, their share, the largest PSI and its feature, the prediction "
            "PSI, the realized metric once annotations arrive, and whether the partition was "
            "flagged (a flagged partition triggers retraining).",
        ),
        View(
            "label_quality",
            ("labeling.lf_summary", "labeling.weak_labels"),
            (keys.LF_SUMMARY, keys.WEAK_LABELS),
            "One row per labeling function: coverage, overlaps, conflicts, votes checked "
            "against gold and empirical accuracy; with the weak labels' rows per class (and "
            "positive share for two classes), abstain share and mean confidence.",
        ),
        View(
            "training_runs",
            ("training.evaluation",),
            (keys.EVALUATION,),
            "Each evaluated model version and its overall holdout metrics (one row per metric) "
            "next to the champion's figure at that time, the difference, and the gate's decision.",
        ),
    ]


def create(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, view: View) -> int:
    """Create or replace `view` and return its row count.

    Raises
    ------
    LookupError
        naming the missing table and the asset to materialize, when an input does not exist.
    """
    for table, dep in zip(view.reads, view.deps, strict=True):
        schema, name = table.split(".")
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
        if not exists:
            raise LookupError(
                f"analytics.{view.name} reads {table}, which does not exist: materialize "
                f"{dep.to_user_string()} first"
            )
    con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
    con.execute(view.sql(spec))
    return int(con.execute(f"SELECT count(*) FROM analytics.{view.name}").fetchall()[0][0])
