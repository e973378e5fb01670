"""Analysts' read-only SQL: one statement, no DDL or DML, a clear word when a run holds the file."""

import re

import pandas as pd

from mlinfra_assets.resources import Warehouse

READ_ONLY = re.compile(r"^\s*(SELECT|WITH|FROM|DESCRIBE|SHOW|SUMMARIZE|EXPLAIN|PRAGMA\s+table_info)\b", re.I)


class QueryRefused(ValueError):
    """The statement is not a single read-only query."""


def run_query(warehouse: Warehouse, sql: str, wait_s: float = 10.0) -> pd.DataFrame:
    """Run `sql` on a read-only connection; waits up to `wait_s` for a writer to finish."""
    statement = sql.strip().rstrip(";")
    if ";" in statement:
        raise QueryRefused("one statement at a time")
    if not READ_ONLY.match(statement):
        raise QueryRefused("only read-only queries (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)")
    reader = Warehouse(path=warehouse.path, lock_timeout_s=wait_s)
    with reader.connect(read_only=True) as con:
        return con.execute(statement).df()
