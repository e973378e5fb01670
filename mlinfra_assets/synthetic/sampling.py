"""Rebalancing: how many synthetic rows each minority class needs, sampled in batches."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlinfra_assets.spec import DatasetSpec
from mlinfra_assets.synthetic.data import LABEL, minority_classes
from mlinfra_assets.synthetic.synthesizer import check_bounds

BATCH_ROWS = 5_000


def rebalance_plan(counts: dict[int, int], target_share: float) -> dict[int, int]:
    """Synthetic rows per minority class so each reaches `target_share` of real + synthetic.

    With m minority classes of R real rows in all, out of N real rows, every minority class
    must end at t * (N + S) rows, where S, the synthetic total, solves
    S = m * t * (N + S) - R, i.e. S = (m * t * N - R) / (1 - m * t).

    Examples
    --------
    >>> rebalance_plan({0: 980, 1: 20}, target_share=0.1)
    {1: 89}
    """
    if not 0 < target_share < 1:
        raise ValueError(f"synthetic.target_share is {target_share}: set it between 0 and 1")
    minority = minority_classes(counts, target_share)
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


def sample_batches(
    synthesizer: Any, spec: DatasetSpec, plan: dict[int, int], batch_rows: int = BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """Conditionally sample each class of `plan`, `batch_rows` at a time.

    Yields frames of `<features>, label` (label = class index); each batch is checked
    against the spec's numeric bounds.
    """
    from sdv.sampling import Condition

    for label, wanted in sorted(plan.items()):
        name = spec.classes[label]
        for start in range(0, wanted, batch_rows):
            n = min(batch_rows, wanted - start)
            batch = next(iter(synthesizer.sample_from_conditions(
                [Condition({LABEL: name}, num_rows=n)], batch_size=n
            ).values()))
            if len(batch) != n or (batch[LABEL] != name).any():
                raise RuntimeError(
                    f"the synthesizer returned {len(batch)} rows for {n} asked of class {name!r}"
                )
            check_bounds(batch, spec)
            batch = batch[spec.feature_columns].copy()
            batch[LABEL] = np.int32(label)
            yield batch


def stage_batches(
    batches: Iterator[pd.DataFrame], folder: Path, version: str
) -> tuple[list[str], dict[int, int]]:
    """Write batches as parquet files with a `synthetic_id`; return the files and rows per class.

    Only one batch is in memory at a time.
    """
    files: list[str] = []
    per_class: dict[int, int] = {}
    offset = 0
    for i, batch in enumerate(batches):
        ids = [f"syn-{version}-{offset + j:08d}" for j in range(len(batch))]
        batch.insert(0, "synthetic_id", ids)
        batch["synthesizer_version"] = version
        path = folder / f"batch_{i:05d}.parquet"
        batch.to_parquet(path, index=False)
        files.append(str(path))
        offset += len(batch)
        for label, n in batch[LABEL].value_counts().items():
            per_class[int(label)] = per_class.get(int(label), 0) + int(n)
    return files, per_class
