"""Load the spec's labeling-functions module: its LFs in SQL, vectorized and row-wise form.

Only the module named by the spec's `labeling_functions` is imported; nothing is scanned.
It is either a `.py` file, relative to the spec's folder (imported from its path: no
PYTHONPATH needed; the file's folder is importable while it loads, so it may import a
helper module beside it), or an importable dotted module (`mypackage.my_lfs`).

What an LF returns: a class index (an int, 0..k-1, in the order of the spec's `classes`),
a class name (a str, one of `classes`), or ABSTAIN (-1; None also abstains, e.g.
`np.where(df.x > 3, "cat", None)` in a vectorized LF, as NULL does in SQL). The type decides how a value is read, so with numeric class names
(`classes: ["0", "1", "2"]`) the int 1 is the class at index 1 and the str "1" the class
named "1". SQL LFs return integers (class indexes) only. `check_lfs` runs every LF on a
sample of rows and names the first one that returns anything else.
Objects with the same name are forms of one LF (see `forms`). The module may also set
`CLASS_BALANCE` (one prior probability per class, in the order of `spec.classes`); the
spec's `labeling.class_balance` overrides it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pandas as pd

from mlinfra_assets.labeling.forms import LF, SQLLabelingFunction, VectorizedLabelingFunction
from mlinfra_assets.spec import DatasetSpec

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = {"row_id"}


class LabelingFunctionError(ValueError):
    """An LF or the LF module cannot be used: the message names it and what to fix."""


@dataclass(frozen=True)
class LFSet:
    """The labeling functions of one module, in definition order."""

    module: str
    lfs: list[LF]
    class_balance: list[float] | None  # from the LF module's CLASS_BALANCE

    @property
    def names(self) -> list[str]:
        return [lf.name for lf in self.lfs]

    def only(self, names: list[str]) -> LFSet:
        """The same module restricted to `names` (in this set's order)."""
        return LFSet(self.module, [lf for lf in self.lfs if lf.name in names], self.class_balance)


def load_lfs(spec: DatasetSpec) -> LFSet:
    """Import `spec.labeling_functions` and group its LFs by name.

    Parameters
    ----------
    spec
        The dataset spec; its `labeling_functions` names a dotted module path.

    Returns
    -------
    LFSet
        The LFs (their names become `labeling.label_matrix` columns, in the order the
        module defines them) and the module's optional class balance.

    Raises
    ------
    LabelingFunctionError
        When the module cannot be imported, defines no LF, a name is unusable, or one
        name has two objects of the same form.
    """
    module, name = import_module(spec)
    kinds: dict[type, str] = {SQLLabelingFunction: "sql", VectorizedLabelingFunction: "vectorized"}
    # a row-wise LF is Snorkel's LabelingFunction, which exists only where something imported
    # snorkel.labeling (the module itself, to use its decorator): an LF module of SQL and vectorized
    # forms does not pay Snorkel's import (~2.5 s) each time the code location loads
    snorkel = sys.modules.get("snorkel.labeling")
    if snorkel is not None:
        kinds[snorkel.LabelingFunction] = "rowwise"
    forms: dict[str, dict[str, object]] = {}
    for value in vars(module).values():
        kind = next((k for cls, k in kinds.items() if isinstance(value, cls)), None)
        if kind is None:
            continue
        _check_name(value.name, name)
        key = next((n for n in forms if n.lower() == value.name.lower()), value.name)
        if kind in forms.setdefault(key, {}) and forms[key][kind] is not value:
            raise LabelingFunctionError(
                f"labeling function name {value.name!r} has two {kind} forms in {name}: rename one"
            )
        forms[key][kind] = value
    if not forms:
        raise LabelingFunctionError(
            f"labeling_functions module {name!r} defines no labeling function: write rules with "
            "@snorkel.labeling.labeling_function(), @vectorized_labeling_function() or "
            "sql_labeling_function() (mlinfra_assets.labeling.forms)"
        )
    lfs = [LF(n, **f) for n, f in forms.items()]  # type: ignore[arg-type]
    return LFSet(name, lfs, _class_balance(getattr(module, "CLASS_BALANCE", None), f"CLASS_BALANCE in {name}", spec))


def import_module(spec: DatasetSpec) -> tuple[ModuleType, str]:
    """The LF module of the spec and how messages name it (the file's path or the dotted name).

    A `.py` file is imported from its path (resolved against the spec's folder) under a
    private module name; it is re-imported when the file changes.

    Raises
    ------
    LabelingFunctionError
        When the file does not exist or the module fails to import (the error is quoted).
    """
    raw = spec.labeling_functions
    if not raw.endswith(".py"):
        try:
            return importlib.import_module(raw), raw
        except Exception as exc:  # noqa: BLE001 - any import error is reported with the module
            raise LabelingFunctionError(
                f"labeling_functions module {raw!r} (spec `labeling_functions`) failed to import: "
                f"{type(exc).__name__}: {exc}. Fix the module, or the dotted path in the spec "
                "(or give a .py file path relative to the spec's folder)."
            ) from exc
    path = Path(spec.resolve(raw)).resolve()
    if not path.is_file():
        raise LabelingFunctionError(
            f"labeling_functions file {path} (spec `labeling_functions: {raw}`, relative to "
            f"{spec.root}) does not exist: write it (`mlinfra init` drafts one) or fix the path"
        )
    stat = path.stat()
    key = hashlib.sha1(f"{path}|{stat.st_mtime_ns}|{stat.st_size}".encode()).hexdigest()[:12]
    mod_name = f"_mlinfra_lfs_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{key}"
    if mod_name in sys.modules:
        return sys.modules[mod_name], str(path)
    loader_spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(loader_spec)  # type: ignore[arg-type]
    sys.modules[mod_name] = module
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        loader_spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - any import error is reported with the file
        del sys.modules[mod_name]
        raise LabelingFunctionError(
            f"labeling_functions file {path} (spec `labeling_functions`) failed to import: "
            f"{type(exc).__name__}: {exc}. Fix the file."
        ) from exc
    finally:
        if added:
            sys.path.remove(folder)
    return module, str(path)


def vote_reader(classes: list[str]) -> tuple[dict[str, int], str]:
    """What an LF may return, as (class name -> index, the rule in words for messages)."""
    names = {c: k for k, c in enumerate(classes)}
    shown = classes if len(classes) <= 12 else [*classes[:12], "..."]
    rule = (f"votes must be -1 (abstain), a class index 0..{len(classes) - 1} (int) or a class "
            f"name (str) of {shown}")
    return names, rule


def check_lfs(spec: DatasetSpec, sample: pd.DataFrame, rows: int = 200) -> None:
    """Import the spec's LF module and run every LF, in every form it is written in, on the
    first `rows` rows of `sample`: the check the code location runs when it loads.

    Parameters
    ----------
    spec
        The dataset spec (`labeling_functions`, `classes`, the feature columns).
    sample
        A few source rows with the spec's feature columns (and its id column if it has one;
        otherwise row numbers are used as ids in messages).

    Raises
    ------
    LabelingFunctionError
        Naming the LF (and the offending value and row) that fails to compile or import,
        raises, returns the wrong number of votes, or returns something that is neither a
        class index, a class name nor ABSTAIN (-1).
    """
    import duckdb

    from mlinfra_assets.labeling import sql_lfs
    from mlinfra_assets.labeling.apply import apply_rowwise, apply_vectorized
    from mlinfra_assets.labeling.forms import lf_frame

    lf_set = load_lfs(spec)
    columns = [c for c in [spec.timestamp_column, *spec.feature_columns] if c]
    missing = [c for c in columns if c not in sample.columns]
    if missing:
        raise LabelingFunctionError(f"the sample given to check_lfs has no column(s) {missing} named by the spec")
    frame = sample.head(rows).reset_index(drop=True)
    ids = frame[spec.id_column] if spec.id_column in frame.columns else pd.Series(range(len(frame)))
    frame = frame[columns].assign(row_id=ids.to_numpy())
    py = lf_frame(frame)
    for lf in lf_set.lfs:
        if lf.rowwise is not None:
            apply_rowwise(py, [lf], spec.classes)
        if lf.vectorized is not None:
            apply_vectorized(py, lf.vectorized, spec.classes)
    sql_part = [lf for lf in lf_set.lfs if lf.sql is not None]
    if not sql_part:
        return
    con = duckdb.connect()
    try:
        con.register("_mlinfra_lf_sample", frame)
        floats = {c for c in columns if frame[c].dtype.kind == "f"}
        source = sql_lfs.Source("_mlinfra_lf_sample", "row_id", columns, floats)
        sql_lfs.check_expressions(sql_part, source, lambda q: [str(t) for t in con.sql(q).types])

        def first(query: str) -> tuple | None:
            found = con.execute(query).fetchall()
            return found[0] if found else None

        bad = sql_lfs.bad_vote([lf.name for lf in sql_part], sql_lfs.votes_sql(sql_part, source), source,
                               spec.n_classes, first)
        if bad is not None:
            raise bad
    finally:
        con.close()


def _check_name(lf_name: str, module: str) -> None:
    if not _IDENT.match(lf_name) or lf_name.lower() in RESERVED:
        raise LabelingFunctionError(
            f"labeling function {lf_name!r} in {module}: its name becomes a column of "
            "labeling.label_matrix; use letters, digits and _ (and not row_id)"
        )


def _class_balance(raw: object, where: str, spec: DatasetSpec) -> list[float] | None:
    if raw is None:
        return None
    balance = [float(p) for p in raw]  # type: ignore[union-attr]
    if len(balance) != spec.n_classes or not math.isclose(sum(balance), 1.0, abs_tol=1e-6):
        raise LabelingFunctionError(
            f"{where} is {balance}: give {spec.n_classes} probabilities "
            f"(classes {spec.classes}) that sum to 1"
        )
    if min(balance) <= 0:
        raise LabelingFunctionError(f"{where} is {balance}: each class needs p > 0")
    return balance


def spec_class_balance(spec: DatasetSpec) -> list[float] | None:
    """The spec's `labeling.class_balance`, checked against its classes (None when unset)."""
    return _class_balance(spec.labeling.class_balance, "labeling.class_balance in the spec", spec)
