"""The catalogue of bad raw input and how to try one: used by tests/faults and benchmarks/faults.py.

Each fault is generated from a clean demo frame; its expected outcome is one of: quarantined
with a reason, stopped by the blocking check (naming what failed), or a clear error.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlinfra_assets import keys
from mlinfra_assets.definitions import build_definitions
from mlinfra_assets.demo import generator as demo
from mlinfra_assets.resources import default_resources
from mlinfra_assets.runner import run_assets
from mlinfra_assets.spec import DatasetSpec, SpecError
from tests.conftest import small_spec

DAYS = 4
ROWS = 800


@dataclass(frozen=True)
class Fault:
    name: str
    change: Callable[[pd.DataFrame], pd.DataFrame] | None = None  # on the clean frame
    raw_bytes: Callable[[bytes], bytes] | None = None  # on the written CSV
    fmt: str = "csv"
    quarantined: int | None = None  # rows expected in quarantine
    reason: str | None = None  # text expected in their reason
    check_fails: str | None = None  # text expected in the failed check's description
    error: str | None = None  # text expected in the error
    per_day: bool = False  # ingest each day in its own run (default: one run for the range)


def _spec(path: Path, fmt: str) -> DatasetSpec:
    base = small_spec(rows=ROWS)
    data = base.model_dump()
    data["source"] = {"kind": fmt, "path": str(path), "name": "transactions",
                      "start_date": "2026-01-01", "end_date": f"2026-01-0{DAYS + 1}"}
    data["demo"] = None
    data["annotator"]["simulated"] = False
    return DatasetSpec.model_validate(data)


def clean_frame() -> pd.DataFrame:
    """The clean source rows the faults start from (deterministic demo rows over DAYS days)."""
    data = small_spec(rows=ROWS).model_dump()
    data["source"]["end_date"] = f"2026-01-0{DAYS + 1}"
    return demo.generate(DatasetSpec.model_validate(data)).transactions


def _set(col: str, value: object, rows: slice = slice(0, 3)) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.astype({col: "object"}) if isinstance(value, str) and df[col].dtype != object else df
        df.iloc[rows, df.columns.get_loc(col)] = value
        return df
    return change


def _dupe_within(df):
    df = df.copy()
    df.loc[5, "txn_id"] = df.loc[6, "txn_id"]  # same day
    return df


def _dupe_across(df):
    df = df.copy()
    df.loc[len(df) - 1, "txn_id"] = df.loc[0, "txn_id"]  # last day repeats an id of the first
    return df


def _spike(df):
    last_day = df[df["ts"] >= "2026-01-04"]
    extra = pd.concat([last_day] * 10, ignore_index=True)
    extra["txn_id"] = np.arange(10**6, 10**6 + len(extra))
    return pd.concat([df, extra], ignore_index=True)


FAULTS = [
    Fault("missing_column", lambda df: df.drop(columns=["amount"]), error="amount"),
    Fault("renamed_column", lambda df: df.rename(columns={"channel": "chan"}), error="channel"),
    Fault("empty_file", raw_bytes=lambda b: b"", error="is empty"),
    Fault("header_only", lambda df: df.iloc[:0], check_fails="no rows"),
    Fault("truncated_parquet", fmt="parquet", raw_bytes=lambda b: b[: len(b) // 2], error="cannot be read"),
    Fault("null_id", _set("txn_id", None), quarantined=3, reason="not_be_null(txn_id)"),
    Fault("duplicate_id_same_day", _dupe_within, quarantined=2, reason="unique(txn_id)"),
    Fault("duplicate_id_in_one_run", _dupe_across, quarantined=2, reason="unique(txn_id)"),
    Fault("duplicate_id_other_day", _dupe_across, quarantined=1, reason="duplicate id", per_day=True),
    Fault("negative_amount", _set("amount", -5.0), quarantined=3, reason="between(amount)"),
    Fault("nan_amount", _set("amount", np.nan), quarantined=3, reason="not_be_null(amount)"),
    Fault("inf_amount", _set("amount", np.inf), quarantined=3, reason="between(amount)"),
    Fault("minus_inf_amount", _set("amount", -np.inf), quarantined=3, reason="between(amount)"),
    Fault("text_in_numeric", _set("amount", "12,50 EUR"), quarantined=3, reason="type(amount)"),
    Fault("text_in_numeric_parquet", lambda df: _set("distance_km", "far")(
        df.astype({"distance_km": str})), fmt="parquet", quarantined=3, reason="type(distance_km)"),
    Fault("hour_out_of_range", _set("hour", 25), quarantined=3, reason="between(hour)"),
    Fault("flag_out_of_range", _set("is_foreign", 2), quarantined=3, reason="between(is_foreign)"),
    Fault("negative_count", _set("txn_count_1h", -1), quarantined=3, reason="between(txn_count_1h)"),
    Fault("unseen_category", _set("channel", "crypto"), quarantined=3, reason="in_set(channel)"),
    Fault("wrong_case_category", _set("merchant_category", "GROCERY"), quarantined=3,
          reason="in_set(merchant_category)"),
    Fault("null_category", _set("channel", None), quarantined=3, reason="not_be_null(channel)"),
    Fault("empty_string_category", _set("channel", ""), quarantined=3, reason="channel"),
    Fault("null_timestamp", _set("ts", None), quarantined=3, reason="missing or not a timestamp"),
    Fault("unparseable_timestamp", _set("ts", "yesterday"), quarantined=3, reason="type(ts)"),
    Fault("future_timestamp", _set("ts", pd.Timestamp("2031-05-01")), quarantined=3,
          reason="after the last partition"),
    Fault("timestamp_before_start", _set("ts", pd.Timestamp("2025-12-01")), quarantined=3,
          reason="before source.start_date"),
    Fault("non_utf8_line", raw_bytes=lambda b: b.replace(b",pos,", b",p\xffs,", 2), quarantined=2,
          reason="unparseable CSV line"),
    Fault("truncated_csv", raw_bytes=lambda b: b[: b.rstrip(b"\n").rfind(b",")], quarantined=1,
          reason="unparseable CSV line"),
    Fault("too_many_fields", raw_bytes=lambda b: b.replace(b",pos,", b",pos,x,", 1), quarantined=1,
          reason="unparseable CSV line"),
    Fault("all_null_column", _set("amount", np.nan, slice(None)), check_fails="quarantined"),
    Fault("mostly_bad_rows", _set("hour", 99, slice(0, ROWS // 4)), check_fails="quarantined"),
    Fault("empty_day", lambda df: df[(df["ts"] < "2026-01-02") | (df["ts"] >= "2026-01-03")],
          check_fails="no rows"),
    Fault("volume_spike_10x", _spike, check_fails="volume spike"),
    Fault("utf8_bom", raw_bytes=lambda b: b"\xef\xbb\xbf" + b, quarantined=0),
]


def _write(df: pd.DataFrame, fault: Fault, folder: Path) -> Path:
    path = folder / f"source.{fault.fmt}"
    if fault.fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    if fault.raw_bytes:
        path.write_bytes(fault.raw_bytes(path.read_bytes()))
    return path


def _source_rows(path: Path, fault: Fault, df: pd.DataFrame) -> int:
    if fault.fmt == "csv":
        lines = [line for line in path.read_bytes().split(b"\n")[1:] if line.strip()]
        return len(lines)
    return len(df)


@dataclass(frozen=True)
class Outcome:
    fault: str
    expected: str
    seen: str
    rows_in: int
    rows_raw: int
    rows_quarantined: int
    ok: bool

    @property
    def rows_lost(self) -> int:
        return self.rows_in - self.rows_raw - self.rows_quarantined if self.rows_in else 0


def expected(fault: Fault) -> str:
    if fault.error:
        return f"clear error naming '{fault.error}'"
    if fault.check_fails:
        return f"blocking check fails: '{fault.check_fails}'"
    return f"{fault.quarantined} row(s) quarantined: '{fault.reason}'"


def try_fault(fault: Fault, clean: pd.DataFrame, folder: Path) -> Outcome:
    """Write the faulty source, ingest it like the platform does, and report what happened."""
    df = fault.change(clean.copy()) if fault.change else clean.copy()
    path = _write(df, fault, folder)
    spec = _spec(path, fault.fmt)
    resources = default_resources(folder / "data")
    if fault.error:
        try:
            build_definitions(spec, resources)
        except SpecError as exc:
            return Outcome(fault.name, expected(fault), f"error: {exc}"[:160], 0, 0, 0, fault.error in str(exc))
        return Outcome(fault.name, expected(fault), "no error", 0, 0, 0, False)
    selection = [keys.raw_key(spec), keys.QUARANTINE]
    days = [f"2026-01-0{d}" for d in range(1, DAYS + 1)]
    for first, last in [(d, d) for d in days] if fault.per_day else [(days[0], days[-1])]:
        result = run_assets(spec, resources, selection, first=first, last=last, raise_on_error=False)
    (check,) = result.get_asset_check_evaluations()
    con = duckdb.connect(resources["warehouse"].path, read_only=True)
    landed = con.execute("SELECT count(*) FROM raw.transactions").fetchall()[0][0]
    reasons = [r[0] for r in con.execute("SELECT reason FROM raw.quarantine").fetchall()]
    con.close()
    rows_in = _source_rows(path, fault, df)
    if fault.check_fails:
        seen = f"check {'passed' if check.passed else 'failed'}: {check.description}"
        ok = not check.passed and fault.check_fails in check.description and not result.success
    else:
        seen = f"{len(reasons)} quarantined: {sorted(set(reasons))[:2]}; check passed={check.passed}"
        ok = check.passed and len(reasons) == fault.quarantined and all(fault.reason in r for r in reasons)
    return Outcome(fault.name, expected(fault), seen[:160], rows_in, landed, len(reasons), ok)
