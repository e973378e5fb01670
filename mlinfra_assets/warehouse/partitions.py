"""The partitions of a spec's data: time windows of its timestamp, or ingest batches.

With a timestamp column, a partition is a window of `source.cadence` (hourly, daily, weekly,
monthly) from `source.start_date`; `_partition` holds the window's start (TIMESTAMP for
hourly, DATE otherwise). Without one, a partition is a batch of ingest (a new file of the
source glob, or a run over a table or single file): Dagster's dynamic partitions named
`<spec.name>_batches`, keys `batch-00001`, ...; `_partition` holds the batch number
(INTEGER). Either way `_partition >= start AND _partition < end` selects a window's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import dagster as dg

from mlinfra_assets.spec import DatasetSpec

BATCH_PREFIX = "batch-"


def batches_name(spec: DatasetSpec) -> str:
    """The name of the dynamic partitions definition of a spec without a timestamp."""
    return f"{spec.name}_batches"


def batch_key(number: int) -> str:
    return f"{BATCH_PREFIX}{number:05d}"


def batch_number(key: str) -> int:
    """The batch number of a partition key `batch-00001` (1)."""
    if not key.startswith(BATCH_PREFIX) or not key[len(BATCH_PREFIX):].isdigit():
        raise ValueError(f"partition key {key!r} is not a batch key ({BATCH_PREFIX}00001, ...)")
    return int(key[len(BATCH_PREFIX):])


def partitions_for(spec: DatasetSpec) -> dg.PartitionsDefinition:
    """Time windows of `source.cadence` over the timestamp column, or dynamic batch partitions."""
    if not spec.has_timestamp:
        return dg.DynamicPartitionsDefinition(name=batches_name(spec))
    src = spec.source
    start = src.start_date.isoformat()
    end = src.end_date.isoformat() if src.end_date else None
    if src.cadence == "hourly":
        return dg.HourlyPartitionsDefinition(start_date=f"{start}-00:00", end_date=end and f"{end}-00:00")
    if src.cadence == "weekly":  # weeks start on the start date's weekday (cron: 0 is Sunday)
        return dg.WeeklyPartitionsDefinition(
            start_date=start, end_date=end, day_offset=(src.start_date.weekday() + 1) % 7
        )
    if src.cadence == "monthly":
        day = src.start_date.day
        if day > 28:
            raise ValueError(
                f"source.start_date {start}: monthly partitions start on a day 1..28; pick such a day"
            )
        return dg.MonthlyPartitionsDefinition(start_date=start, end_date=end, day_offset=day)
    return dg.DailyPartitionsDefinition(start_date=start, end_date=end)


def partition_type(spec: DatasetSpec) -> str:
    """The SQL type of `_partition`."""
    if not spec.has_timestamp:
        return "INTEGER"
    return "TIMESTAMP" if spec.source.cadence == "hourly" else "DATE"


@dataclass(frozen=True)
class Window:
    """The partitions one run covers.

    keys : the partition keys, in order
    start, end : `_partition >= start AND _partition < end` selects their rows (typed as
        `_partition`); for time windows `start`/`end` are the window's bounds
    starts : the `_partition` value of each key (time: window start; batch: number)
    ends : where each key's rows end (time: window end; batch: number + 1)
    """

    keys: list[str]
    start: object
    end: object
    starts: list[object]
    ends: list[object]

    @property
    def label(self) -> str:
        first, last = self.keys[0], self.keys[-1]
        return first if first == last else f"{first} .. {last}"

    def key_of(self, value: object) -> str:
        """The partition key of a `_partition` value of this window."""
        lookup = {_norm(s): k for s, k in zip(self.starts, self.keys, strict=True)}
        return lookup.get(_norm(value), str(value))


def _norm(value: object) -> object:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return value.to_pydatetime().replace(tzinfo=None)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    return int(value) if not isinstance(value, str) else value


def window_for(spec: DatasetSpec, keys: list[str]) -> Window:
    """The window of `keys` (partition keys of `partitions_for(spec)`)."""
    if not keys:
        raise ValueError("no partition selected: run over at least one partition")
    if not spec.has_timestamp:
        numbers = sorted(batch_number(k) for k in keys)
        return Window([batch_key(n) for n in numbers], numbers[0], numbers[-1] + 1, numbers,
                      [n + 1 for n in numbers])
    pdef = partitions_for(spec)
    windows = sorted(((pdef.time_window_for_partition_key(k), k) for k in keys), key=lambda p: p[0].start)
    hourly = spec.source.cadence == "hourly"

    def typed(t: datetime) -> object:
        t = t.replace(tzinfo=None)
        return t if hourly else t.date()

    return Window(
        [k for _, k in windows],
        typed(windows[0][0].start),
        typed(windows[-1][0].end),
        [typed(w.start) for w, _ in windows],
        [typed(w.end) for w, _ in windows],
    )


def window_of(spec: DatasetSpec, context: dg.AssetExecutionContext) -> Window:
    """The window of the partitions an asset step materializes."""
    return window_for(spec, list(context.partition_keys))
