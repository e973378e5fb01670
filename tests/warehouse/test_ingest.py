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


def test_a_window_ingested_in_runs_lands_what_one_run_lands(tmp_path):
    """source.ingest_chunk_rows splits a backfill into runs of whole partitions: the same rows land,
    the same rows are quarantined with the same reasons, the suite reports the same failures."""
    from mlinfra_assets.resources import default_resources
    from mlinfra_assets.warehouse.ingest import chunks
    from mlinfra_assets.warehouse.partitions import partitions_for, window_for

    def ingest(spec, folder):
        resources = default_resources(folder)
        run_assets(spec, resources, selection=[keys.source_key(spec), keys.SOURCE_ORACLE])
        con = duckdb.connect(resources["warehouse"].path)
        con.execute("UPDATE source.transactions SET amount = -1 WHERE txn_id % 97 = 0")
        con.execute("UPDATE source.transactions SET channel = 'pigeon' WHERE txn_id % 89 = 0")
        # ids repeated within a day (a repeat across partitions is quarantined as a duplicate either way)
        con.execute("UPDATE source.transactions AS s SET txn_id = txn_id - 1 WHERE txn_id % 301 = 0 AND "
                    "(SELECT ts::DATE FROM source.transactions p WHERE p.txn_id = s.txn_id - 1) = ts::DATE")
        keys_ = partitions_for(spec).get_partition_keys()
        runs = len(chunks(con, spec, window_for(spec, keys_)))
        con.close()
        result = run_assets(spec, resources, selection=[keys.raw_key(spec), keys.QUARANTINE], raise_on_error=False)
        con = duckdb.connect(resources["warehouse"].path, read_only=True)
        raw = con.execute("SELECT * EXCLUDE (_ingested_at) FROM raw.transactions ORDER BY txn_id, ts").fetchall()
        quarantine = con.execute("SELECT * EXCLUDE (quarantined_at) FROM raw.quarantine "
                                 "ORDER BY row_id, _partition, reason").fetchall()
        con.close()
        check = result.get_asset_check_evaluations()[0]
        return runs, raw, quarantine, check.passed, check.metadata["failed_expectations"].value

    whole = ingest(small_spec(), tmp_path / "whole")
    spec = small_spec()
    spec.source.ingest_chunk_rows = 1_000
    in_runs = ingest(spec, tmp_path / "runs")
    assert whole[0] == 1 and in_runs[0] >= 6
    assert len(whole[2]) > 100 and any("duplicate" in r[3] or "unique" in r[3] for r in whole[2])
    assert in_runs[1:] == whole[1:]


def test_a_large_demo_is_written_in_day_ranges(tmp_path, monkeypatch):
    """Above GENERATE_CHUNK_ROWS the demo streams into the warehouse in ranges of whole days: ids
    1..n in day order, every day present, the fraud rate and the shift as in one piece."""
    spec = small_spec(demo={**small_spec().demo.model_dump(), "drift": {"day": 20, "covariate": True, "concept": True}})
    monkeypatch.setenv("MLINFRA_DEMO_ROWS", "12000")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    counts, rate = demo.write_demo(con, spec, chunk_rows=2_500)
    assert counts["source.transactions"] == counts["oracle.labels"] == 12_000
    ids, first, last, days = con.execute(
        "SELECT count(DISTINCT txn_id), min(txn_id), max(txn_id), count(DISTINCT ts::DATE) FROM source.transactions"
    ).fetchall()[0]
    assert (ids, first, last, days) == (12_000, 1, 12_000, (spec.source.end_date - spec.source.start_date).days)
    # ids follow the days, across the ranges
    assert con.execute("SELECT count(*) FROM (SELECT ts::DATE AS d, lag(ts::DATE) OVER (ORDER BY txn_id) AS p "
                       "FROM source.transactions) WHERE d < p").fetchall()[0][0] == 0
    labels = con.execute("SELECT avg(label) FROM oracle.labels JOIN source.transactions USING (txn_id)").fetchall()[0][0]
    assert labels == pytest.approx(rate) and 0.01 < rate < 0.04
    one_piece = demo.generate(spec, 12_000).transactions
    online = con.execute("SELECT avg((channel = 'online')::INT) FILTER (day(ts) > 20), "
                         "avg((channel = 'online')::INT) FILTER (day(ts) <= 20) FROM source.transactions").fetchall()[0]
    late = one_piece["ts"].dt.day > 20
    expected = ((one_piece["channel"] == "online")[late].mean(), (one_piece["channel"] == "online")[~late].mean())
    assert online == pytest.approx(expected, abs=0.03) and online[0] > online[1] + 0.1
    con.close()
