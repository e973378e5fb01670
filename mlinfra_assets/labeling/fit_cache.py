"""Snorkel's label model fitted once per input: a fit (13 starts of 500 epochs) is kept in
the data folder under a key of everything it depends on (the vote patterns and their counts, the
LFs, the classes, the class balance and its source, `labeling.fit_rows`, the seed, this code and
the library versions), and a later run with the same inputs reads it back instead of fitting
again: a retraining after new annotations, a re-run of a failed job, runs side by side on the
same data. The fit is deterministic in those inputs, so the weak labels are the same either way.
"""

import hashlib
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlinfra_assets.labeling import label_model

FOLDER = "label_models"
KEEP = 8  # the most recent fits kept; older ones are removed


def fit_key(patterns: pd.DataFrame, names: list[str], classes: list[str], class_balance: list[float] | None,
            balance_source: str, fit_rows: int, seed: int) -> str:
    """A hash of every input of `label_model.fit`, of its code and of the libraries it calls."""
    import snorkel
    import torch

    digest = hashlib.sha256()
    votes = patterns.sort_values(names)[[*names, "n"]].to_numpy(dtype=np.int64)
    digest.update(votes.tobytes())
    digest.update(json.dumps({
        "shape": list(votes.shape), "names": names, "classes": classes,
        "balance": None if class_balance is None else [float(p).hex() for p in class_balance],
        "source": balance_source, "fit_rows": fit_rows, "seed": seed,
        "versions": [snorkel.__version__, torch.__version__],
    }).encode())
    digest.update(Path(label_model.__file__).read_bytes())
    return digest.hexdigest()[:24]


def fit(folder: Path, patterns: pd.DataFrame, names: list[str], classes: list[str],
        class_balance: list[float] | None, balance_source: str, fit_rows: int,
        seed: int) -> tuple[label_model.Fit, str]:
    """`label_model.fit`, or the kept fit of the same inputs: (the fit, how it was obtained)."""
    key = fit_key(patterns, names, classes, class_balance, balance_source, fit_rows, seed)
    path = folder / f"{key}.pkl"
    if path.exists():
        with path.open("rb") as f:
            kept = pickle.load(f)
        path.touch()  # recently used: kept longer
        return kept, f"reused: the votes, class balance and seed of an earlier fit ({path.name})"
    started = time.perf_counter()
    result = label_model.fit(patterns, names, classes, class_balance, balance_source, fit_rows, seed)
    seconds = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    with partial.open("wb") as f:
        pickle.dump(result, f)
    os.replace(partial, path)  # a reader sees the whole fit or none
    for old in sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)[KEEP:]:
        old.unlink(missing_ok=True)
    return result, f"fitted in {seconds:.1f} s, kept as {path.name}"
