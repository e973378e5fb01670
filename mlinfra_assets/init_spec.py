"""`mlinfra init`: draft a dataset spec and a labeling-functions module from a user's table.

Reads a CSV or Parquet file (or `duckdb:schema.table` in the data folder's warehouse) with
DuckDB, types each column (numeric with its observed range, categorical with its values),
writes `spec.yaml` and `lfs.py` into the output folder, and says what it decided.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import duckdb
import yaml

from mlinfra_assets.spec import GENERATED_ID, MAX_CLASSES, RESERVED_PREFIX, class_column

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL", "BOOLEAN")
TIME_TYPES = ("TIMESTAMP", "DATE")
MAX_CATEGORIES = 200  # more distinct text values: free text or an id, left out of the features
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class InitError(ValueError):
    """The table cannot be drafted into a spec: the message names the column or file."""


@dataclass
class Draft:
    spec: dict
    lfs: str
    notes: list[str] = field(default_factory=list)


def _source(path: str, data_dir: Path) -> tuple[str, list[str], dict, duckdb.DuckDBPyConnection]:
    """The FROM item for the table, its parameters, the spec's `source:` and a connection."""
    if path.startswith("duckdb:"):
        table = path.removeprefix("duckdb:")
        parts = table.split(".")
        if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
            raise InitError(f"{path}: name a warehouse table as duckdb:schema.table")
        warehouse = data_dir / "warehouse.duckdb"
        if not warehouse.exists():
            raise InitError(f"{path}: the warehouse {warehouse} does not exist (set --data-dir)")
        con = duckdb.connect(str(warehouse), read_only=True)
        return table, [], {"kind": "duckdb_table", "table": table, "name": parts[1]}, con
    file = Path(path).expanduser().resolve()
    if not file.exists():
        raise InitError(f"{path} does not exist: give a CSV or Parquet file, or duckdb:schema.table")
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq", ".tsv", ".txt"):
        raise InitError(f"{path}: cannot read a {suffix or 'suffix-less'} file; give a .csv or .parquet file")
    kind = "parquet" if suffix in (".parquet", ".pq") else "csv"
    name = re.sub(r"[^A-Za-z0-9_]", "_", file.stem).lower()
    name = name if _IDENT.match(name) and not name.startswith(RESERVED_PREFIX) else f"t_{name}".strip("_")
    reader = "read_parquet(?)" if kind == "parquet" else "read_csv(?)"
    con = duckdb.connect()
    try:
        con.execute(f"DESCRIBE SELECT * FROM {reader}", [str(file)]).fetchall()
    except duckdb.Error as exc:
        con.close()
        raise InitError(f"{path} cannot be read as {kind}: {str(exc).splitlines()[0]}") from exc
    return reader, [str(file)], {"kind": kind, "path": str(file), "name": name}, con


def _classes(con: duckdb.DuckDBPyConnection, src: str, params: list, target: str, numeric: bool) -> list:
    rows = con.execute(
        f"SELECT {target} AS v, count(*) AS n FROM {src} WHERE {target} IS NOT NULL GROUP BY 1 ORDER BY 1",
        params,
    ).fetchall()
    if len(rows) < 2:
        raise InitError(
            f"target column {target!r} has {len(rows)} class(es) ({[r[0] for r in rows]}): a classifier needs "
            "at least two; choose another --target"
        )
    if len(rows) > MAX_CLASSES:
        raise InitError(
            f"target column {target!r} has {len(rows)} distinct values, more than {MAX_CLASSES} classes: "
            "is it a regression target or an id? choose another --target"
        )
    values = [r[0] for r in rows]
    if numeric and all(float(v).is_integer() for v in values):
        values = [int(v) for v in values]
    return [(v, n) for v, (_, n) in zip(values, rows, strict=True)]


def _cadence(con: duckdb.DuckDBPyConnection, src: str, params: list, ts: str) -> tuple[str, str, str, str]:
    """The cadence for the timestamp's span, the first day, the day after the last, and the span in words."""
    first, last = con.execute(
        f"SELECT min(CAST({ts} AS TIMESTAMP)), max(CAST({ts} AS TIMESTAMP)) FROM {src}", params
    ).fetchall()[0]
    if first is None:
        raise InitError(f"timestamp column {ts!r} holds no timestamp")
    span = (last - first).total_seconds() / 86400
    cadence = "hourly" if span <= 3 else "daily" if span <= 366 else "weekly" if span <= 3 * 366 else "monthly"
    end = (last.date() + timedelta(days=1)).isoformat()
    return cadence, first.date().isoformat(), end, f"{span:.1f} days from {first} to {last}"


def draft(path: str, target: str, id_column: str | None = None, timestamp: str | None = None,
          data_dir: Path | None = None) -> Draft:
    """Draft a spec (as a dict), an LF module (text) and notes for the table at `path`."""
    src, params, source, con = _source(path, data_dir or Path("data"))
    try:
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {src}", params).fetchall()}
        for col, what in ((target, "--target"), (id_column, "--id"), (timestamp, "--timestamp")):
            if col is not None and col not in types:
                raise InitError(f"{what} {col!r} is not a column of {path}; its columns: {list(types)}")
        notes: list[str] = []
        def plain(c: str) -> bool:
            return bool(_IDENT.match(c)) and not c.startswith(RESERVED_PREFIX)

        named = [c for c in (target, id_column, timestamp) if c and not plain(c)]
        if named:
            raise InitError(
                f"column(s) {named} of {path} are not plain identifiers (letters, digits, _; not starting "
                f"with {RESERVED_PREFIX!r}, which the platform reserves): rename them in the file"
            )
        for c in [c for c in types if not plain(c)]:
            notes.append(f"column {c!r} left out: not a plain identifier (letters, digits, _, not starting "
                         f"with {RESERVED_PREFIX!r}); rename it in the file to use it")
            del types[c]
        total = con.execute(f"SELECT count(*) FROM {src}", params).fetchall()[0][0]
        if id_column:
            dupes = con.execute(
                f"SELECT count(*) - count(DISTINCT {id_column}), count(*) - count({id_column}) FROM {src}", params
            ).fetchall()[0]
            if dupes[0] or dupes[1]:
                raise InitError(
                    f"id column {id_column!r} is not unique ({dupes[0]} duplicate value(s), {dupes[1]} missing): "
                    "give a unique --id, or leave --id out and the platform generates one"
                )
        else:
            notes.append(f"no --id: the platform generates {GENERATED_ID} from each row's content")
        if timestamp and not types[timestamp].startswith(TIME_TYPES):
            ok = con.execute(
                f"SELECT count(*) FILTER (WHERE TRY_CAST({timestamp} AS TIMESTAMP) IS NULL AND {timestamp} IS NOT NULL) "
                f"FROM {src}", params).fetchall()[0][0]
            if ok:
                raise InitError(f"--timestamp {timestamp!r}: {ok} value(s) are not timestamps")
        target_numeric = types[target].startswith(NUMERIC_TYPES)
        classes = _classes(con, src, params, target, target_numeric)
        numeric, categorical = {}, {}
        for col, typ in types.items():
            if col in (target, id_column, timestamp):
                continue
            nulls = con.execute(f"SELECT count(*) - count({col}) FROM {src}", params).fetchall()[0][0]
            if typ.startswith(NUMERIC_TYPES):
                lo, hi = con.execute(f"SELECT min({col})::DOUBLE, max({col})::DOUBLE FROM {src}", params).fetchall()[0]
                feature = {"min": _num(lo), "max": _num(hi)}
                if nulls:
                    feature["nullable"] = True
                numeric[col] = feature
            else:
                values = [r[0] for r in con.execute(
                    f"SELECT DISTINCT CAST({col} AS VARCHAR) FROM {src} WHERE {col} IS NOT NULL ORDER BY 1 "
                    f"LIMIT {MAX_CATEGORIES + 1}", params).fetchall()]
                if len(values) > MAX_CATEGORIES:
                    notes.append(f"column {col!r} left out: over {MAX_CATEGORIES} distinct values (free text or an id?)")
                    continue
                feature = {"values": values}
                if nulls:
                    feature["nullable"] = True
                categorical[col] = feature
        if not numeric and not categorical:
            raise InitError(f"{path} has no feature column besides the target, id and timestamp")
        spec: dict = {"name": source["name"], "source": source}
        if timestamp:
            cadence, start, end, span = _cadence(con, src, params, timestamp)
            source.update(start_date=start, end_date=end, cadence=cadence)
            notes.append(f"timestamp {timestamp!r}: {span}; {cadence} partitions up to source.end_date {end} "
                         "(remove end_date for a live source that keeps growing)")
        else:
            notes.append("no --timestamp: each run of the source (or each new file) is a batch partition")
        spec["id_column"] = id_column
        spec["timestamp_column"] = timestamp
        spec["features"] = {"numeric": numeric, "categorical": categorical}
        names = [c for c, _ in classes]
        spec["classes"] = names
        if len(names) == 2:
            minority = min(classes, key=lambda c: c[1])[0]
            spec["positive_class"] = minority
            notes.append(f"2 classes: F1 and PR-AUC are reported for the minority class {minority!r}")
        else:
            notes.append(f"{len(names)} classes: models are chosen and gated on macro-F1")
        spec["labeling_functions"] = "lfs.py"
        spec["gold"] = {"column": target}
        spec["training"] = {"metric": "auto"}
        lfs = _lf_module(con, src, params, target, names, numeric, path)
    finally:
        con.close()
    counts = ", ".join(f"{c}: {n}" for c, n in classes)
    notes.insert(0, f"{total} rows; {len(numeric)} numeric and {len(categorical)} categorical features; "
                    f"target {target!r} with classes {counts}")
    return Draft(spec, lfs, notes)


def _num(value: float | None) -> float | int | None:
    """A value as YAML writes it back exactly (a rounded range would quarantine its own extremes)."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def _lf_module(con: duckdb.DuckDBPyConnection, src: str, params: list, target: str, classes: list,
               numeric: dict, path: str) -> str:
    """An LF module with one worked example per class: a threshold on the numeric feature
    whose values set that class apart most (drafted from the target's statistics)."""
    consts = [f"{_const(c)} = {i}  # class {c!r}" for i, c in enumerate(classes)]
    examples = []
    for cls in classes:
        best = None
        for col in numeric:
            row = con.execute(
                f"SELECT avg({col}) FILTER (WHERE CAST({target} AS VARCHAR) = $c), "
                f"avg({col}) FILTER (WHERE CAST({target} AS VARCHAR) <> $c), stddev_pop({col}) "
                f"FROM {src.replace('?', '$p')}",
                {"c": str(cls), **({"p": params[0]} if params else {})},
            ).fetchall()[0]
            inside, outside, sd = row
            if inside is None or outside is None or not sd:
                continue
            gap = (inside - outside) / sd
            if best is None or abs(gap) > abs(best[1]):
                best = (col, gap, float(f"{(inside + outside) / 2:.4g}"))
        name = f"{_const(cls).lower()}_example"
        if best is None:
            examples.append(f"# no numeric feature sets class {cls!r} apart: write its rules by hand\n")
            continue
        col, gap, cut = best
        op = ">=" if gap > 0 else "<="
        examples.append(
            f"# class {cls!r}: its mean {col} is {abs(gap):.2f} standard deviations "
            f"{'above' if gap > 0 else 'below'} the other rows'\n"
            f"{name} = sql_labeling_function(\n"
            f"    {name!r}, f\"CASE WHEN {col} {op} {_num(cut)} THEN {{{_const(cls)}}} END\"\n)\n"
        )
    return LF_TEMPLATE.format(path=path, consts="\n".join(consts), examples="\n\n".join(examples))


def _const(cls: object) -> str:
    name = class_column(str(cls)).upper()
    return name if _IDENT.match(name) else f"CLASS_{name}"


LF_TEMPLATE = '''"""Labeling functions for {path}: the rules that vote a class for unlabelled rows.

An LF sees one row (the spec's feature columns) and returns a class index (the order of the
spec's `classes:`) or ABSTAIN (-1) when the rule does not apply. None has to be precise or to
cover every row: the label model weighs the LFs by how they agree and disagree, and
`labeling.lf_summary` shows each one's coverage, conflicts and accuracy on gold rows.
A missing value never votes: comparisons with NULL are not true.

Three forms, under one name each (write any of them):
- SQL, run inside the warehouse (fastest):
      big = sql_labeling_function("big", "CASE WHEN area >= 900 THEN 1 END")
- vectorized, a DataFrame chunk in, an array of votes out:
      @vectorized_labeling_function()
      def big(df): return np.where(df.area >= 900, 1, ABSTAIN)
- row-wise (Snorkel's own):
      @labeling_function()
      def big(x): return 1 if x.area >= 900 else ABSTAIN

The examples below were drafted by `mlinfra init` from the target column's statistics, one
per class: replace them with rules you trust (domain knowledge, not the labels you have).
"""

import numpy as np  # noqa: F401 - for vectorized LFs
from snorkel.labeling import labeling_function  # noqa: F401 - for row-wise LFs

from mlinfra_assets.labeling.forms import sql_labeling_function
from mlinfra_assets.labeling.forms import vectorized_labeling_function  # noqa: F401

ABSTAIN = -1
{consts}


{examples}'''


def write(draft_: Draft, out: Path, force: bool = False) -> tuple[Path, Path]:
    """Write `spec.yaml` and `lfs.py` into `out` (refusing to overwrite without `force`)."""
    out.mkdir(parents=True, exist_ok=True)
    spec_path, lf_path = out / "spec.yaml", out / "lfs.py"
    existing = [p for p in (spec_path, lf_path) if p.exists()]
    if existing and not force:
        raise InitError(f"{', '.join(map(str, existing))} exist(s): remove them or pass --force")
    header = (
        "# Dataset spec drafted by `mlinfra init`: check the features, the classes and the gold\n"
        "# column, then run `mlinfra run --spec THIS_FILE`. Relative paths are relative to this file.\n"
    )
    spec_path.write_text(header + yaml.safe_dump(draft_.spec, sort_keys=False, allow_unicode=True))
    lf_path.write_text(draft_.lfs)
    return spec_path, lf_path
