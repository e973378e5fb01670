"""Bad raw input, generated on purpose: each kind gets its expected outcome and no row is lost."""

import pytest

from tests.faults.raw_input import FAULTS, clean_frame, try_fault


@pytest.fixture(scope="module")
def clean():
    return clean_frame()


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_bad_raw_input(fault, clean, tmp_path):
    outcome = try_fault(fault, clean, tmp_path)
    assert outcome.ok, f"expected {outcome.expected}; saw {outcome.seen}"
    assert outcome.rows_lost == 0, "a row was lost or duplicated"


def test_the_campaign_tries_at_least_30_kinds():
    assert len({f.name for f in FAULTS}) >= 30
