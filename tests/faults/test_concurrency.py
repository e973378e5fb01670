"""Concurrency: retraining runs (three here, five in benchmarks/faults.py) under the multiprocess
executor through a real Dagster instance (the project's dagster.yaml: `warehouse` pool of 1) with an analyst looping
`mlinfra query` beside them: every run succeeds, no lock error anywhere, every query returns
rows or the clear wait message, never a traceback (procedure in tests/faults/concurrency.py)."""

import multiprocessing

import numpy as np
import pandas as pd
import pytest

from tests.faults.concurrency import SUITE_RUNS as RUNS
from tests.faults.concurrency import TIMEOUT_S, build_demo, campaign


def _review_in_child(queue) -> None:  # noqa: ANN001 - a multiprocessing queue
    from mlinfra_assets.labeling import review
    from tests.conftest import small_spec

    spec = small_spec()
    rng = np.random.default_rng(3)
    n = 600
    rows = pd.DataFrame({c: rng.normal(size=n) for c in spec.numeric})
    for c in spec.categorical:
        rows[c] = rng.choice(spec.features.categorical[c].values, n)
    rows["label"] = (rows["amount"] > 0).astype(int)
    rows.loc[:20, "label"] = 1 - rows.loc[:20, "label"]
    rows["row_id"], rows["source"] = np.arange(n), "weak"
    try:
        queue.put(len(review.find_issues(spec, rows, seed=1)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(f"{type(exc).__name__}: {exc}")


def test_label_review_runs_in_a_spawned_step_process():
    """A Dagster step runs in a spawned process: cleanlab's process pool broke there (NameError)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_review_in_child, args=(queue,))
    child.start()
    found = queue.get(timeout=120)
    child.join(timeout=30)
    assert isinstance(found, int) and found > 0, found


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    return campaign(build_demo(tmp_path_factory.mktemp("concurrency")), runs=RUNS)


@pytest.mark.integration
@pytest.mark.timeout(TIMEOUT_S + 300)  # the campaign runs in the first one's setup
def test_retraining_runs_side_by_side_succeed_without_a_lock_error(outcome):
    assert outcome.returncodes == [0] * RUNS
    assert sorted(r["status"] for r in outcome.runs) == ["SUCCESS"] * RUNS, outcome.runs
    assert outcome.lock_errors == []
    assert outcome.at_once >= 2 and outcome.max_runs_at_once == outcome.at_once
    assert RUNS > outcome.at_once  # the run queue held one back
    assert sum(s > 0 for s in outcome.overlap_s) >= RUNS - 1, outcome.overlap_s
    assert outcome.max_steps_at_once == 1  # the warehouse pool holds across runs
    assert outcome.versions_registered == RUNS
    assert outcome.rows_lost == 0, (outcome.rows_before, outcome.rows_after)


@pytest.mark.integration
@pytest.mark.timeout(TIMEOUT_S + 300)  # the campaign runs in the first one's setup
def test_every_analyst_query_returns_rows_or_the_wait_message(outcome):
    assert len(outcome.calls) >= RUNS
    bad = [(c.kind, c.sql, c.returncode, (c.stdout + c.stderr)[-2000:]) for c in outcome.calls
           if c.kind not in ("rows", "busy")]
    assert not bad, bad
