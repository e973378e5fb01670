"""Ground truth: the spec's `gold:` labels landed in one table, `raw.gold`, whatever their form.

Gold labels come from the source's own target column (a file made by `mlinfra init`), a
separate CSV / Parquet file joined on the id, or a warehouse table (the demo's
`oracle.labels`). They are used for evaluation, the label model's choice and the simulated
annotator, never as a feature. Values are read as class names; a value that is no name but an
integer in range is read as a class index (only when no class name is itself an integer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from mlinfra_assets.keys import GOLD_TABLE
from mlinfra_assets.resources import transaction
from mlinfra_assets.spec import DatasetSpec, SpecError

GOLD_DDL = f"CREATE OR REPLACE TABLE {GOLD_TABLE} (row_id VARCHAR, label INTEGER, class VARCHAR)"


class GoldError(SpecError):
    """The gold labels do not fit the spec: the message names the file, column or class."""


@dataclass(frozen=True)
class GoldResult:
    rows: int
    source_rows: int
    per_class: pd.DataFrame  # class, rows
    where: str


def gold_where(spec: DatasetSpec) -> str:
    """Where the spec's gold labels are, in words (for messages)."""
    g = spec.gold
    if g is None:
        return "(no gold)"
    if g.table:
        return f"gold.table {g.table}, column {g.column}"
    if g.path:
        return f"gold.path {spec.resolve(g.path)}, column {g.column}"
    return f"the source's column {g.column}"


def gold_select(spec: DatasetSpec) -> tuple[str, list[str], str]:
    """SQL selecting `row_id, value` of the gold labels (as text), its parameters, and the id
    column it joins on."""
    from mlinfra_assets.warehouse.source import source_select

    g = spec.gold
    assert g is not None
    if g.in_source:
        from_sql, params = source_select(spec)
        id_col = spec.id_column
    elif g.table:
        from_sql, params, id_col = g.table, [], g.id_column or spec.id_column
    else:
        path = spec.resolve(g.path)
        reader = "read_parquet(?)" if Path(path).suffix.lower() in (".parquet", ".pq") else "read_csv(?)"
        from_sql, params, id_col = reader, [path], g.id_column or spec.id_column
    sql = (
        f"SELECT CAST({id_col} AS VARCHAR) AS row_id, CAST({g.column} AS VARCHAR) AS value "
        f"FROM {from_sql} AS gold_src WHERE {g.column} IS NOT NULL"
    )
    return sql, params, id_col


def class_map(spec: DatasetSpec, values: list[str]) -> dict[str, int]:
    """Map each distinct gold value to a class index; raise naming the values that fit no class."""
    out: dict[str, int] = {}
    numeric_names = any(c.lstrip("-").isdigit() for c in spec.classes)
    unknown = []
    for v in values:
        if v in spec.classes:
            out[v] = spec.classes.index(v)
        elif not numeric_names and v.isdigit() and int(v) < spec.n_classes:
            out[v] = int(v)
        elif _number_name(v) in spec.classes:  # 1.0 in a float column, class "1"
            out[v] = spec.classes.index(_number_name(v))
        else:
            unknown.append(v)
    if unknown:
        raise GoldError(
            f"{gold_where(spec)} holds value(s) {sorted(unknown)[:10]} that are not classes of the spec "
            f"{spec.classes}: add them to `classes:` in the spec or fix the labels"
        )
    return out


def _number_name(value: str) -> str:
    try:
        f = float(value)
    except ValueError:
        return value
    return str(int(f)) if f.is_integer() else value


def land_gold(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> GoldResult:
    """Read the spec's gold labels, check them against the classes and the source ids, and
    replace `raw.gold` with them in one transaction. The labels stay in DuckDB (a temporary
    table, one scan of the source); only their distinct values reach Python."""
    from mlinfra_assets.warehouse.source import source_select

    where = gold_where(spec)
    sql, params, id_col = gold_select(spec)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _gold_raw AS {sql}", params)
    except duckdb.Error as exc:
        raise GoldError(
            f"{where} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]}): check that the "
            f"file or table exists and has the columns {id_col} and {spec.gold.column}"
        ) from exc
    try:
        values = [v for (v,) in con.execute("SELECT DISTINCT value FROM _gold_raw ORDER BY 1").fetchall()]
        if not values:
            raise GoldError(f"{where} holds no label: point gold at the labels, or drop `gold:` from the spec")
        mapping = class_map(spec, values)
        classes = pd.DataFrame({"value": list(mapping), "label": list(mapping.values())})
        classes["class"] = classes["label"].map(dict(enumerate(spec.classes)))
        con.register("_gold_classes", classes)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _gold AS SELECT g.row_id, CAST(c.label AS INTEGER) AS label, "
            "c.class FROM _gold_raw AS g JOIN _gold_classes AS c USING (value)"
        )
        con.unregister("_gold_classes")
        conflicting, examples = con.execute(
            "SELECT count(*), list(row_id ORDER BY row_id)[1:3] FROM "
            "(SELECT row_id FROM _gold GROUP BY row_id HAVING count(DISTINCT label) > 1)"
        ).fetchall()[0]
        if conflicting:
            raise GoldError(
                f"{where}: {conflicting} id(s) have more than one label (e.g. {examples}): "
                f"ids in {id_col} must be unique, or each id must carry one label"
            )
        src_sql, src_params = source_select(spec)
        source_rows, joined = con.execute(
            f"SELECT count(*), count(g.row_id) FROM (SELECT CAST({spec.id_column} AS VARCHAR) AS rid "
            f"FROM {src_sql} AS s) AS s LEFT JOIN (SELECT DISTINCT row_id FROM _gold) AS g ON g.row_id = s.rid",
            src_params,
        ).fetchall()[0]
        if joined == 0:
            sample = [r for (r,) in con.execute("SELECT row_id FROM _gold LIMIT 3").fetchall()]
            raise GoldError(
                f"{where} does not join on any id of the source: its ids (e.g. {sample}) "
                f"match none of the source's {spec.id_column} values; set gold.id_column to the file's id "
                "column, or fix the ids"
            )
        with transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS raw")
            con.execute(GOLD_DDL)
            con.execute(f"INSERT INTO {GOLD_TABLE} SELECT row_id, any_value(label), any_value(class) "
                        "FROM _gold GROUP BY row_id")
        rows = con.execute(f"SELECT count(*) FROM {GOLD_TABLE}").fetchall()[0][0]
        counts = dict(con.execute(f"SELECT class, count(*) FROM {GOLD_TABLE} GROUP BY class").fetchall())
    finally:
        con.execute("DROP TABLE IF EXISTS _gold_raw")
        con.execute("DROP TABLE IF EXISTS _gold")
    per_class = pd.DataFrame({"class": spec.classes, "rows": [int(counts.get(c, 0)) for c in spec.classes]})
    return GoldResult(int(rows), int(source_rows), per_class, where)
