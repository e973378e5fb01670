"""A user's mistakes in a table, a spec, an LF module or gold labels: each is one line on stderr
naming the thing that is wrong, exit status 2, no traceback, and nothing is run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.own_data.datasets import wine_generated_id
from tests.own_data.test_matrix import mlinfra


def refused(*args: str) -> str:
    done = mlinfra(*args, check=False)
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def wine_drafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mlinfra init` on wine once, and the user's LF module beside the spec."""
    root = tmp_path_factory.mktemp("wine")
    case = wine_generated_id(root)
    mlinfra("init", str(case.data), *case.init_args, "--out", str(root / "wine"))
    (root / "wine" / "lfs.py").write_text(case.lfs)
    return root / "wine"


@pytest.fixture
def wine_spec(wine_drafted: Path, tmp_path: Path) -> Path:
    """A copy of the drafted spec folder that the test may edit."""
    shutil.copytree(wine_drafted, tmp_path / "wine")
    return tmp_path / "wine" / "spec.yaml"


def edit(spec_path: Path, change) -> None:  # noqa: ANN001 - a function of the spec dict
    spec = yaml.safe_load(spec_path.read_text())
    change(spec)
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_target_with_one_class(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "kind": ["a", "a", "a"]}).to_csv(path, index=False)
    assert "target column 'kind' has 1 class" in refused("init", str(path), "--target", "kind", "--out", str(tmp_path / "o"))


def test_id_column_with_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "dupes.csv"
    pd.DataFrame({"id": [1, 1, 2, 3], "x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]}).to_csv(path, index=False)
    message = refused("init", str(path), "--target", "y", "--id", "id", "--out", str(tmp_path / "o"))
    assert "id column 'id' is not unique" in message


def test_file_that_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"PK\x03\x04")
    assert "table.xlsx" in refused("init", str(path), "--target", "y")


def test_reserved_column_name(wine_spec: Path) -> None:
    edit(wine_spec, lambda s: s["features"]["numeric"].update({"_score": {}}))
    message = refused("run", "--spec", str(wine_spec))
    assert "'_score'" in message and "reserved" in message


def test_lf_file_that_does_not_exist(wine_spec: Path) -> None:
    edit(wine_spec, lambda s: s.update(labeling_functions="rules/missing_lfs.py"))
    assert "missing_lfs.py" in refused("run", "--spec", str(wine_spec))


def test_lf_that_returns_an_unknown_class(wine_spec: Path) -> None:
    lfs = wine_spec.parent / "lfs.py"
    lfs.write_text(lfs.read_text() + '\nodd = sql("odd", "CASE WHEN hue <= 0.9 THEN 7 END")\n')
    message = refused("run", "--spec", str(wine_spec))
    assert "odd" in message and "7" in message


def test_gold_file_that_joins_no_id(wine_spec: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"_unused": [0], "wine": ["nope-1"], "target": [0]}).drop(columns="_unused").to_csv(labels, index=False)
    edit(wine_spec, lambda s: s.update(gold={"path": str(labels), "column": "target", "id_column": "wine"}))
    message = refused("run", "--spec", str(wine_spec))
    assert "does not join on any id" in message and "labels.csv" in message
