"""Load the spec's labeling-functions module: its LFs in SQL, vectorized and row-wise form.

Only the module named by the spec's `labeling_functions` is imported; nothing is scanned.
Objects with the same name are forms of one LF (see `forms`). The module may also set
`CLASS_BALANCE` (one prior probability per class, in the order of `spec.classes`); the
spec's `labeling.class_balance` overrides it.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass

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
    from snorkel.labeling import LabelingFunction

    name = spec.labeling_functions
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import error is reported with the module
        raise LabelingFunctionError(
            f"labeling_functions module {name!r} (spec `labeling_functions`) failed to import: "
            f"{type(exc).__name__}: {exc}. Fix the module or the dotted path in the spec."
        ) from exc
    kinds = {SQLLabelingFunction: "sql", VectorizedLabelingFunction: "vectorized", LabelingFunction: "rowwise"}
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
