"""Shadow scoring: a challenger scores live partitions beside the champion before it replaces it.

When the gate's holdout figures say "promote" and a champion exists, the challenger gets the
registry alias `shadow` instead of `champion` (`serving.shadow_days` > 0). Each partition the
champion then scores (`monitoring.predictions`), the shadow scores too, into
`monitoring.shadow_predictions` (the same columns). Once it has scored `serving.shadow_days`
partitions, the two are compared on the same rows:

- prediction distribution: the total variation distance between the class shares each model
  predicts; more than `serving.shadow_share_margin` keeps the shadow out (a model that flags
  several times what the serving one flags is a change a person should look at first);
- realized metric, where labels have arrived: the spec's metric of each model on the labeled rows
  of those partitions that were not training rows; the shadow's more than
  `serving.shadow_metric_margin` below the champion's keeps it out. With fewer than
  `thresholds.min_labeled_rows` such rows this test says "too few labels" and does not decide.

Promoted: alias `champion` moves to the shadow's version, then `shadow` is removed; kept out:
`shadow` is removed. Either way the champion is never unset, and each decision is a row of
`monitoring.shadow_decisions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets.monitoring import performance
from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.training.metrics import metric_score

TABLE = "monitoring.shadow_predictions"
DECISIONS = "monitoring.shadow_decisions"
PROMOTED, KEPT_OUT, WAITING = "promote", "keep_out", "waiting"
DECISION_COLUMNS = ["decided_at", "shadow_version", "champion_version", "partitions", "rows", "share_change",
                    "shadow_realized", "champion_realized", "labeled_rows", "decision", "reason"]


@dataclass(frozen=True)
class Comparison:
    """The shadow beside the champion on the rows both scored."""

    shadow: str
    champion: str | None
    partitions: list[str]
    rows: int
    shares: pd.DataFrame  # class, champion, shadow: the share of the rows predicted as each class
    share_change: float  # total variation distance between the two columns of `shares`
    labeled_rows: int  # labeled rows of those partitions that were not training rows
    realized: dict[str, float]  # "champion", "shadow" -> the spec's metric there (NaN: too few labels)

    def side_by_side(self, spec: DatasetSpec) -> pd.DataFrame:
        """One row per figure, a column per model (for the UI)."""
        name = performance.metric_name(spec)
        rows = [("rows scored by both", self.rows, self.rows),
                *[(f"predicted share {c}", a, b) for c, a, b in self.shares.itertuples(index=False)],
                (f"realized {name} ({self.labeled_rows} labeled rows)", self.realized["champion"],
                 self.realized["shadow"])]
        return pd.DataFrame(rows, columns=["figure", f"champion v{self.champion}", f"shadow v{self.shadow}"])


# the shadow's rows beside the champion's predictions of the same rows (parameter $shadow: its version)
BOTH = f"""{TABLE} s JOIN monitoring.predictions p
    ON CAST(p._row_id AS VARCHAR) = CAST(s._row_id AS VARCHAR) AND p._partition = s._partition"""


def compare(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, shadow: str) -> Comparison:
    """The shadow version's predictions beside the champion's stored predictions of the same rows
    (every partition the shadow scored): counted in SQL, only the labeled rows come back."""
    counts = con.execute(
        f"""SELECT s._partition, p._model_version AS champion_version, s._prediction AS shadow,
                   p._prediction AS champion, count(*) AS n
            FROM {BOTH} WHERE s._model_version = $shadow GROUP BY ALL""",
        {"shadow": shadow},
    ).df()
    k, rows = spec.n_classes, int(counts["n"].sum())
    share = {m: np.bincount(counts[m].to_numpy(dtype="int64"), weights=counts["n"], minlength=k)[:k] / max(rows, 1)
             for m in ("champion", "shadow")}
    labeled = _unseen_labels(con, shadow)
    realized = {"champion": float("nan"), "shadow": float("nan")}
    if len(labeled) >= spec.thresholds.min_labeled_rows:
        truth = labeled["label"].to_numpy()
        for m in realized:
            realized[m] = float(metric_score(spec.metric, truth, labeled[m].to_numpy(), k, spec.positive_index))
    return Comparison(
        shadow=shadow, champion=", ".join(sorted(set(counts["champion_version"]))) or None,
        partitions=[str(p) for p in sorted(set(counts["_partition"]))], rows=rows,
        shares=pd.DataFrame({"class": spec.classes, "champion": share["champion"], "shadow": share["shadow"]}),
        share_change=float(0.5 * np.abs(share["champion"] - share["shadow"]).sum()) if rows else float("nan"),
        labeled_rows=len(labeled), realized=realized,
    )


def _unseen_labels(con: duckdb.DuckDBPyConnection, shadow: str) -> pd.DataFrame:
    """shadow, champion, label of the rows both scored that have a human label
    (labeling.gold_labels) and are not training rows."""
    if not performance._exists(con, "labeling.gold_labels"):
        return pd.DataFrame({"shadow": [], "champion": [], "label": []}, dtype="int64")
    training = performance.TRAINING if performance._exists(con, performance.TRAINING) else performance.NO_TRAINING_SET
    return con.execute(
        f"""SELECT s._prediction AS shadow, p._prediction AS champion, g.label
            FROM {BOTH} JOIN labeling.gold_labels g ON CAST(g.row_id AS VARCHAR) = CAST(s._row_id AS VARCHAR)
            WHERE s._model_version = $shadow AND g.label >= 0
              AND CAST(s._row_id AS VARCHAR) NOT IN (SELECT CAST(_row_id AS VARCHAR) FROM {training})""",
        {"shadow": shadow},
    ).df()


def decide(c: Comparison, spec: DatasetSpec) -> tuple[str, str]:
    """(PROMOTED | KEPT_OUT | WAITING, why)."""
    serving = spec.serving
    if c.rows == 0:
        return WAITING, (f"shadow v{c.shadow}: no row scored by both it and the champion yet "
                         "(monitoring/predictions runs first)")
    if len(c.partitions) < serving.shadow_days:
        return WAITING, (f"shadow v{c.shadow} has scored {len(c.partitions)} of serving.shadow_days "
                         f"{serving.shadow_days} partitions")
    on = f"on {c.rows:,} rows of {len(c.partitions)} partition(s)"
    if not c.share_change <= serving.shadow_share_margin:
        return KEPT_OUT, (f"predicted class shares move {c.share_change:.3f} from the champion's {on} (total "
                          f"variation; more than serving.shadow_share_margin {serving.shadow_share_margin})")
    name = performance.metric_name(spec)
    a, b = c.realized["shadow"], c.realized["champion"]
    if np.isnan(a) or np.isnan(b):
        labels = (f"realized {name} not compared: too few labels ({c.labeled_rows} labeled rows that were not "
                  f"training rows, thresholds.min_labeled_rows is {spec.thresholds.min_labeled_rows})")
    elif a < b - serving.shadow_metric_margin:
        return KEPT_OUT, (f"realized {name} {a:.3f} vs the champion's {b:.3f} on {c.labeled_rows} labeled rows "
                          f"(more than serving.shadow_metric_margin {serving.shadow_metric_margin} below)")
    else:
        labels = f"realized {name} {a:.3f} vs the champion's {b:.3f} on {c.labeled_rows} labeled rows"
    return PROMOTED, f"predicted class shares within {c.share_change:.3f} of the champion's {on}; {labels}"


def record(con: duckdb.DuckDBPyConnection, c: Comparison, decision: str, reason: str, at: datetime) -> None:
    """Append the decision to `monitoring.shadow_decisions`."""
    row = pd.DataFrame([(at, c.shadow, c.champion, len(c.partitions), c.rows, c.share_change,
                         c.realized["shadow"], c.realized["champion"], c.labeled_rows, decision, reason)],
                       columns=DECISION_COLUMNS)
    with transaction(con, _decision=row):
        con.execute("CREATE SCHEMA IF NOT EXISTS monitoring")
        con.execute(f"CREATE TABLE IF NOT EXISTS {DECISIONS} AS SELECT * FROM _decision LIMIT 0")
        con.execute(f"INSERT INTO {DECISIONS} SELECT * FROM _decision")


def shares_plot(c: Comparison):  # noqa: ANN201 - a draw callback for plots.png_markdown
    """Predicted class shares, champion beside shadow."""

    def draw(ax) -> None:  # noqa: ANN001 - a matplotlib axis
        x = np.arange(len(c.shares))
        ax.bar(x - 0.2, c.shares["champion"], 0.4, label=f"champion v{c.champion}")
        ax.bar(x + 0.2, c.shares["shadow"], 0.4, label=f"shadow v{c.shadow}")
        ax.set_xticks(x, [str(v) for v in c.shares["class"]], rotation=30 if len(x) > 4 else 0)
        ax.set_ylabel("share of rows predicted")
        ax.set_title(f"predicted class shares on {c.rows:,} rows (TV {c.share_change:.3f})")
        ax.legend()

    return draw
