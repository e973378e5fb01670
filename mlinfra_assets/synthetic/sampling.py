"""Rebalancing: how many synthetic rows each minority class needs, sampled in batches."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.synthetic import constraints
from mlinfra_assets.synthetic.constraints import Constraint
from mlinfra_assets.synthetic.data import LABEL, SYNTHETIC_ID, VERSION, minority_classes
from mlinfra_assets.synthetic.synthesizer import Model, check_bounds


def too_small(counts: dict[int, int], min_rows: int) -> list[int]:
    """Classes with fewer labeled rows than `synthetic.min_class_rows`: never sampled."""
    return [c for c, n in counts.items() if n < min_rows]


def rebalance_plan(counts: dict[int, int], target_share: float, min_rows: int = 0) -> dict[int, int]:
    """Synthetic rows per minority class so each reaches `target_share` of real + synthetic.

    With m minority classes of R real rows in all, out of N real rows, every minority class
    must end at t * (N + S) rows, where S, the synthetic total, solves
    S = m * t * (N + S) - R, i.e. S = (m * t * N - R) / (1 - m * t). Classes with fewer than
    `min_rows` rows are left out (not sampled, still counted in N).

    Examples
    --------
    >>> rebalance_plan({0: 980, 1: 20}, target_share=0.1)
    {1: 89}
    >>> rebalance_plan({0: 980, 1: 20}, target_share=0.1, min_rows=30)
    {}
    """
    if not 0 < target_share < 1:
        raise ValueError(f"synthetic.target_share is {target_share}: set it between 0 and 1")
    skipped = set(too_small(counts, min_rows))
    minority = [c for c in minority_classes(counts, target_share) if c not in skipped]
    if not minority:
        return {}
    m, real, minority_real = len(minority), sum(counts.values()), sum(counts[c] for c in minority)
    if m * target_share >= 1:
        raise ValueError(
            f"{m} minority classes at synthetic.target_share {target_share} would need more "
            "than all the rows: lower the target share"
        )
    synthetic = (m * target_share * real - minority_real) / (1 - m * target_share)
    total = real + synthetic
    return {c: max(0, math.ceil(target_share * total - counts[c])) for c in minority}


@dataclass(frozen=True)
class ClassPlan:
    """What the stage samples per class, and why each class is (not) sampled."""

    rows: dict[int, int]  # class index -> synthetic rows to sample
    table: pd.DataFrame  # class, index, labeled_rows, share, planned_rows, status
    warnings: list[str]  # one per class skipped for synthetic.min_class_rows
    problem: str | None = None  # why nothing is sampled at all (an impossible target share)

    @property
    def sampled(self) -> list[str]:
        return self.table.loc[self.table.planned_rows > 0, "class"].tolist()

    @property
    def skipped(self) -> list[str]:
        return self.table.loc[self.table.status.str.startswith("skipped"), "class"].tolist()


def class_plan(counts: dict[int, int], spec: DatasetSpec) -> ClassPlan:
    """Per-class rebalancing rows for every class of the spec (any number of classes).

    A class under `synthetic.target_share` of the labeled rows is sampled up to that share,
    unless it has fewer than `synthetic.min_class_rows` labeled rows (skipped, with a warning).
    A target share that the minority classes cannot all reach is a problem, not an exception:
    nothing is sampled and the gate withholds the (absent) rows, so training still runs.
    """
    s = spec.synthetic
    total = sum(counts.values())
    problem = None
    try:
        rows = rebalance_plan(counts, s.target_share, s.min_class_rows)
    except ValueError as exc:
        rows, problem = {}, str(exc)
    small = set(too_small(counts, s.min_class_rows))
    minority = set(minority_classes(counts, s.target_share))
    status = []
    for c in range(spec.n_classes):
        if c in small and c in minority:
            status.append(f"skipped: {counts[c]} labeled rows < synthetic.min_class_rows {s.min_class_rows}")
        elif c not in minority:
            status.append(f"not needed: share >= synthetic.target_share {s.target_share}")
        elif problem:
            status.append("not sampled: synthetic.target_share cannot be reached")
        else:
            status.append("sampled" if rows.get(c, 0) > 0 else "not needed: at the target share")
    table = pd.DataFrame({
        "class": spec.classes,
        "index": range(spec.n_classes),
        "labeled_rows": [counts[c] for c in range(spec.n_classes)],
        "share": [counts[c] / total if total else 0.0 for c in range(spec.n_classes)],
        "planned_rows": [int(rows.get(c, 0)) for c in range(spec.n_classes)],
        "status": status,
    })
    warnings = [
        f"class {spec.classes[c]!r} has {counts[c]} labeled rows < synthetic.min_class_rows {s.min_class_rows}: "
        "no conditional sampling for it (too few rows to learn from)"
        for c in sorted(small & minority)
    ]
    return ClassPlan(rows, table, warnings, problem)


def checked(batch: pd.DataFrame, spec: DatasetSpec, rules: list[Constraint], seed: int, model: Model) -> pd.DataFrame:
    """Sampled rows with every feature (unmodeled ones completed), checked against the spec's
    bounds and constraints."""
    batch = model.plan.complete(batch, seed)
    check_bounds(batch, spec)
    constraints.check(batch, rules)
    return batch


def sample_batches(model: Model, spec: DatasetSpec, plan: dict[int, int]) -> Iterator[pd.DataFrame]:
    """Conditionally sample each class of `plan`, `synthetic.batch_rows` at a time.

    Yields frames of `<features>, _label` (class index); only one batch is in memory.
    """
    from sdv.sampling import Condition

    batch_rows, rules, seed = spec.synthetic.batch_rows, constraints.parse(spec), 0
    for label, wanted in sorted(plan.items()):
        name = spec.classes[label]
        for start in range(0, wanted, batch_rows):
            n = min(batch_rows, wanted - start)
            batch = next(iter(model.synthesizer.sample_from_conditions(
                [Condition({LABEL: name}, num_rows=n)], batch_size=n
            ).values()))
            if len(batch) != n or (batch[LABEL] != name).any():
                raise RuntimeError(
                    f"the synthesizer returned {len(batch)} rows for {n} asked of class {name!r}"
                )
            seed += 1
            batch = checked(batch, spec, rules, seed, model)[spec.feature_columns].copy()
            batch[LABEL] = np.int32(label)
            yield batch


def sample_rows(model: Model, spec: DatasetSpec, rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` unconditional rows (`_label` as class names), completed and checked."""
    frame = next(iter(model.synthesizer.sample(rows, batch_size=spec.synthetic.batch_rows).values()))
    return checked(frame, spec, constraints.parse(spec), seed, model)[[*spec.feature_columns, LABEL]]


def stage_batches(
    batches: Iterator[pd.DataFrame], folder: Path, version: str
) -> tuple[list[str], dict[int, int]]:
    """Write batches as parquet files with `_synthetic_id` and `_synthesizer_version`; return the
    files and rows per class.

    Only one batch is in memory at a time.
    """
    files: list[str] = []
    per_class: dict[int, int] = {}
    offset = 0
    for i, batch in enumerate(batches):
        ids = [f"syn-{version}-{offset + j:08d}" for j in range(len(batch))]
        batch.insert(0, SYNTHETIC_ID, ids)
        batch[VERSION] = version
        path = folder / f"batch_{i:05d}.parquet"
        batch.to_parquet(path, index=False)
        files.append(str(path))
        offset += len(batch)
        for label, n in batch[LABEL].value_counts().items():
            per_class[int(label)] = per_class.get(int(label), 0) + int(n)
    return files, per_class
