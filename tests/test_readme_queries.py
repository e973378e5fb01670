"""Every `mlinfra query "..."` example in the README: read statements by DuckDB's parser here;
run against the materialized demo warehouse of tests/test_end_to_end.py (`check_readme_queries`)."""

import re
from pathlib import Path

import pytest

from mlinfra_assets import cli
from mlinfra_assets.query import read_statement
from mlinfra_assets.spec import PROJECT_ROOT

EXAMPLE = re.compile(r'mlinfra query "([^"]+)"')


def readme_queries() -> list[str]:
    return EXAMPLE.findall((PROJECT_ROOT / "README.md").read_text())


def test_the_readme_has_query_examples_and_each_is_one_read():
    queries = readme_queries()
    assert len(queries) >= 5, queries
    assert any("analytics.drift_history ORDER BY _partition" in q for q in queries)
    for sql in queries:
        read_statement(sql)  # raises when refused or unparsable


def check_readme_queries(data_dir: str | Path, capsys: pytest.CaptureFixture,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each README example with `mlinfra query --data-dir DATA_DIR` in this process: exit 0,
    nothing on stderr, a header and at least one row."""
    monkeypatch.setenv("MLINFRA_DATA_DIR", str(data_dir))  # restored after the test (main sets it)
    monkeypatch.delenv("MLINFRA_WAREHOUSE", raising=False)
    for sql in readme_queries():
        code = cli.main(["query", "--data-dir", str(data_dir), sql])
        out, err = capsys.readouterr()
        assert (code, err) == (0, ""), f"{sql}\n{err}"
        assert len(out.strip().splitlines()) >= 2, f"{sql} returned no row:\n{out}"
