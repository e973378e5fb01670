"""Demo generation, raw ingest with quarantine, and the blocking Great Expectations check."""

import duckdb
import pytest

from mlinfra_assets import keys
from mlinfra_assets.demo import generator as demo
from mlinfra_assets.runner import run_assets
from mlinfra_assets.warehouse import RAW_SUITE_CHECK
from tests.conftest import small_spec


def test_demo_is_deterministic_and_hides_the_label(spec):
    a, b = demo.generate(spec), demo.generate(spec)
    assert a.transactions.equals(b.transactions)
    assert "label" not in a.transactions.columns
    rate = a.labels["label"].mean()
    assert 0.005 < rate < 0.04


@pytest.mark.parametrize("bad_share,passes", [(0.0, True), (0.2, False)])
def test_quarantine_and_blocking_check(resources, bad_share, passes):
    spec = small_spec()
    run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE])
    path = resources["warehouse"].path
    if bad_share:
        con = duckdb.connect(path)
        con.execute(
            "UPDATE source.transactions SET amount = -1 WHERE txn_id % 100 < ?", [int(bad_share * 100)]
        )
        con.close()
    result = run_assets(
        spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], raise_on_error=False
    )
    assert result.success is passes
    checks = result.get_asset_check_evaluations()
    assert [c.check_name for c in checks] == [RAW_SUITE_CHECK]
    assert checks[0].passed is passes
    con = duckdb.connect(path, read_only=True)
    landed = con.execute("SELECT count(*) FROM raw.transactions").fetchall()[0][0]
    quarantined = con.execute("SELECT count(*) FROM raw.quarantine").fetchall()[0][0]
    source = con.execute("SELECT count(*) FROM source.transactions").fetchall()[0][0]
    reasons = con.execute("SELECT DISTINCT reason FROM raw.quarantine").fetchall()
    con.close()
    assert landed + quarantined == source
    if bad_share:
        assert quarantined == pytest.approx(source * bad_share, rel=0.1)
        assert reasons == [("expect_column_values_to_be_between(amount)",)]
        failed = checks[0].metadata["failed_expectations"].value
        assert failed[0]["column"] == "amount" and failed[0]["unexpected_rows"] == quarantined
    # a re-run replaces: nothing duplicated
    run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], raise_on_error=False)
    con = duckdb.connect(path, read_only=True)
    assert con.execute("SELECT count(*) FROM raw.transactions").fetchall()[0][0] == landed
    assert con.execute("SELECT count(*) FROM raw.quarantine").fetchall()[0][0] == quarantined
    con.close()
