"""Load the spec's labeling-functions module: its Snorkel LabelingFunction objects.

Only the module named by the spec's `labeling_functions` is imported; nothing is scanned.
The module may also set `CLASS_BALANCE` (one prior probability per class, in the order of
`spec.classes`) for the label model.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass
from typing import Any

from mlinfra_assets.spec import DatasetSpec

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = {"row_id"}


class LabelingFunctionError(ValueError):
    """The labeling-functions module cannot be used: the message names it and what to fix."""


@dataclass(frozen=True)
class LFSet:
    """The labeling functions of one module, in definition order."""

    module: str
    lfs: list[Any]
    class_balance: list[float] | None

    @property
    def names(self) -> list[str]:
        return [lf.name for lf in self.lfs]


def load_lfs(spec: DatasetSpec) -> LFSet:
    """Import `spec.labeling_functions` and collect its LabelingFunction objects.

    Parameters
    ----------
    spec
        The dataset spec; its `labeling_functions` names a dotted module path.

    Returns
    -------
    LFSet
        The functions (their names become `labeling.label_matrix` columns) and the
        optional class balance.

    Raises
    ------
    LabelingFunctionError
        When the module cannot be imported, defines no labeling function, or a name or
        `CLASS_BALANCE` is unusable.
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
    lfs = [v for v in vars(module).values() if isinstance(v, LabelingFunction)]
    if not lfs:
        raise LabelingFunctionError(
            f"labeling_functions module {name!r} defines no Snorkel LabelingFunction: decorate "
            "rules with @snorkel.labeling.labeling_function()"
        )
    seen: set[str] = set()
    for lf in lfs:
        if not _IDENT.match(lf.name) or lf.name in RESERVED:
            raise LabelingFunctionError(
                f"labeling function {lf.name!r} in {name}: its name becomes a column of "
                "labeling.label_matrix; use letters, digits and _ (and not row_id)"
            )
        if lf.name.lower() in seen:
            raise LabelingFunctionError(f"labeling function name {lf.name!r} appears twice in {name}")
        seen.add(lf.name.lower())
    return LFSet(name, lfs, _class_balance(module, name, spec))


def _class_balance(module: object, name: str, spec: DatasetSpec) -> list[float] | None:
    raw = getattr(module, "CLASS_BALANCE", None)
    if raw is None:
        return None
    balance = [float(p) for p in raw]
    if len(balance) != spec.n_classes or not math.isclose(sum(balance), 1.0, abs_tol=1e-6):
        raise LabelingFunctionError(
            f"CLASS_BALANCE in {name} is {balance}: give {spec.n_classes} probabilities "
            f"(classes {spec.classes}) that sum to 1"
        )
    if min(balance) <= 0:
        raise LabelingFunctionError(f"CLASS_BALANCE in {name} is {balance}: each class needs p > 0")
    return balance
