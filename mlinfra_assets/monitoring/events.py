"""Drift events: which newly drifted days start a retraining, which fall in a cooldown.

Dagster-free, so the drift sensor's decisions are plain functions of its state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date


@dataclass
class DriftState:
    """What the drift sensor has done: the last drift_report event read, the days each
    retraining request covered (one list per request) and the days a cooldown absorbed."""

    after: int | None = None
    events: list[list[str]] = field(default_factory=list)
    absorbed: list[str] = field(default_factory=list)

    @property
    def seen(self) -> set[str]:
        return {d for e in self.events for d in e} | set(self.absorbed)

    def dumps(self) -> str:
        return json.dumps({"after": self.after, "events": self.events, "absorbed": self.absorbed})

    @classmethod
    def loads(cls, cursor: str | None) -> DriftState | None:
        """The state in `cursor`; None when there is none or it cannot be read (then the
        sensor rebuilds it from the retraining runs in the instance)."""
        if not cursor:
            return None
        try:
            data = json.loads(cursor)
            return cls(data.get("after"), [list(e) for e in data.get("events", [])],
                       list(data.get("absorbed", [])))
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


def _day(value: str) -> date | None:
    """The day of a partition key (a day, week or month start, or an hour `2026-01-02-13:00`);
    None for a batch key or an unpartitioned report: never within a cooldown."""
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
