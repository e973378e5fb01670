"""Drift events: which newly drifted days start a retraining, which fall in a cooldown.

Dagster-free, so the drift sensor's decisions are plain functions of its state.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

FLAGGED_KEPT = 1000  # feature-drifted partitions the cursor remembers (for drift_persistence)


@dataclass
class DriftState:
    """What the drift sensor has done: the last drift_report event read, the days each
    retraining request covered (one list per request) and the days a cooldown absorbed."""

    after: int | None = None
    events: list[list[str]] = field(default_factory=list)
    absorbed: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)  # partitions whose features drifted, newest last

    @property
    def seen(self) -> set[str]:
        return {d for e in self.events for d in e} | set(self.absorbed)

    def dumps(self) -> str:
        return json.dumps({"after": self.after, "events": self.events, "absorbed": self.absorbed,
                           "flagged": self.flagged[-FLAGGED_KEPT:]})

    @classmethod
    def loads(cls, cursor: str | None) -> DriftState | None:
        """The state in `cursor`; None when there is none or it cannot be read (then the
        sensor rebuilds it from the retraining runs in the instance)."""
        if not cursor:
            return None
        try:
            data = json.loads(cursor)
            return cls(data.get("after"), [list(e) for e in data.get("events", [])],
                       list(data.get("absorbed", [])), list(data.get("flagged", [])))
        except (ValueError, TypeError, AttributeError):
            return None


def plan(state: DriftState, drifted: list[str], cooldown_days: int) -> tuple[list[str], list[str]]:
    """Split newly reported drifted days into a new event and days absorbed by a cooldown.

    A day already seen is ignored. A new day within `cooldown_days` of the first day of an
    earlier event belongs to that event (no new retraining: no storm while drift persists);
    the other new days form one new event, however many (a backfill flags many at once).

    Returns
    -------
    (days of the new event, sorted; days absorbed by a cooldown, sorted)
    """
    seen = state.seen
    anchors = [a for a in (_day(min(e)) for e in state.events if e) if a is not None]
    fresh = sorted({d for d in drifted if d not in seen})
    absorbed = [
        d for d in fresh
        if any(abs((_day(d) - a).days) < cooldown_days for a in anchors if _day(d) is not None)
    ]
    return [d for d in fresh if d not in absorbed], absorbed


def previous_key(key: str, cadence: str) -> str | None:
    """The partition key before `key`: the day, week, month or hour before, or the batch before;
    None when there is none (the first batch, an unpartitioned report)."""
    batch = re.fullmatch(r"(batch-)(\d+)", key)
    if batch:
        n = int(batch.group(2))
        return f"{batch.group(1)}{n - 1:0{len(batch.group(2))}d}" if n > 1 else None
    try:
        if cadence == "hourly":
            return (datetime.strptime(key, "%Y-%m-%d-%H:%M") - timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M")
        day = date.fromisoformat(key)
    except ValueError:
        return None
    if cadence == "monthly":
        return (day.replace(day=1) - timedelta(days=1)).replace(day=1).isoformat()
    return (day - timedelta(days=7 if cadence == "weekly" else 1)).isoformat()


def persistent(flagged: set[str], drifted: list[str], persistence: int, cadence: str) -> tuple[list[str], list[str]]:
    """Split feature-drifted partitions into those where drift persisted (the partition and the
    `persistence` - 1 partitions before it all drifted, `flagged` holding every drifted one seen)
    and those still waiting for it."""
    held, waiting = [], []
    for key in sorted(set(drifted)):
        run, previous = 1, previous_key(key, cadence)
        while run < persistence and previous in flagged:
            run, previous = run + 1, previous_key(previous, cadence)
        (held if run >= persistence else waiting).append(key)
    return held, waiting


def _day(value: str) -> date | None:
    """The day of a partition key (a day, week or month start, or an hour `2026-01-02-13:00`);
    None for a batch key or an unpartitioned report: never within a cooldown."""
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
