"""Analysts' read-only SQL: one statement that DuckDB's own parser calls a read, on a read-only
connection with file and network access off; every refusal or SQL error is one line."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import duckdb

from mlinfra_assets.warehouse_file import open_duckdb

if TYPE_CHECKING:
    import pandas as pd

# DuckDB parses all of these as a SELECT statement; EXPLAIN is run when what it explains is one
READS = "SELECT, WITH ... SELECT, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, or EXPLAIN of one of them"


class QueryRefused(ValueError):
    """The text is not exactly one read statement."""


class QueryFailed(ValueError):
    """DuckDB rejected the statement: syntax, a missing table or column, a file read, ..."""


def one_line(exc: BaseException) -> str:
    """DuckDB's message on one line: the caret lines ("LINE 1: ...") dropped, the rest joined."""
    lines = []
    for line in str(exc).splitlines():
        if line.startswith("LINE ") or not line.strip() or set(line.strip()) == {"^"}:
            continue
        lines.append(line.strip())
    return " ".join(lines) or type(exc).__name__


def _statements(sql: str) -> list[duckdb.Statement]:
    parser = duckdb.connect(":memory:")
    try:
        return parser.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryFailed(one_line(exc)) from exc
    finally:
        parser.close()


def _explained(query: str) -> str:
    """The statement an EXPLAIN statement explains: what follows EXPLAIN, ANALYZE and an option
    list in parentheses, located with DuckDB's tokenizer."""
    tokens = duckdb.tokenize(query)
    ends = [offset for offset, _ in tokens[1:]] + [len(query)]
    depth = 0
    for (offset, kind), end in zip(tokens[1:], ends[1:], strict=True):
        text = query[offset:end].strip()
        if kind == duckdb.token_type.operator and ("(" in text or ")" in text):
            depth += text.count("(") - text.count(")")
            continue
        if depth > 0 or (kind == duckdb.token_type.keyword and text.upper() == "ANALYZE"):
            continue
        return query[offset:]
    return ""


def read_statement(sql: str) -> duckdb.Statement:
    """The one read statement in `sql`, as DuckDB's parser sees it.

    Raises
    ------
    QueryRefused
        when `sql` holds no statement, several, or one that is not a read (DDL, DML, COPY,
        ATTACH, SET, PRAGMA, CALL, INSTALL/LOAD, EXPORT, ...), whatever it starts with.
    QueryFailed
        when DuckDB cannot parse it.
    """
    statements = _statements(sql)
    if not statements:
        raise QueryRefused("no SQL statement given")
    if len(statements) > 1:
        raise QueryRefused(f"one statement at a time ({len(statements)} given)")
    [statement] = statements
    kind = statement.type.name
    if statement.type == duckdb.StatementType.EXPLAIN:
        inner = _statements(_explained(statement.query))
        if len(inner) == 1 and inner[0].type == duckdb.StatementType.SELECT:
            return statement
        kind = f"EXPLAIN of {inner[0].type.name if inner else 'nothing'}"
    elif statement.type == duckdb.StatementType.SELECT:
        return statement
    raise QueryRefused(f"{kind} is not a read statement; mlinfra query runs one of: {READS}")


def run_query(warehouse: str | os.PathLike[str], sql: str, wait_s: float = 10.0) -> pd.DataFrame:
    """Run `sql`, one read statement, on a read-only connection to the warehouse file `warehouse`
    without file or network access; waits up to `wait_s` for a writer to finish (then
    `WarehouseBusy`).

    Raises
    ------
    QueryRefused
        see `read_statement`.
    QueryFailed
        with DuckDB's message on one line: a syntax error, a missing table or column, a file read.
    """
    statement = read_statement(sql)
    with open_duckdb(warehouse, read_only=True, lock_timeout_s=wait_s) as con:
        # the Spark engine's tables are views over Parquet files in the lake: those folders stay
        # readable, every other file does not
        from mlinfra_assets.lake import allowed_directories

        lake_dirs = allowed_directories(con)
        if lake_dirs:
            con.execute("SET allowed_directories = ?", [lake_dirs])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        try:
            return con.execute(statement).df()
        except duckdb.PermissionException as exc:
            raise QueryFailed(f"{one_line(exc)} (mlinfra query reads the warehouse only, no files)") from exc
        except duckdb.CatalogException as exc:
            raise QueryFailed(
                f"{one_line(exc)} (in {warehouse}; SHOW ALL TABLES lists its tables and views)"
            ) from exc
        except duckdb.Error as exc:
            raise QueryFailed(one_line(exc)) from exc
