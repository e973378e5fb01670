"""What each stage hands to definitions.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stage:
    assets: list[Any] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)
    sensors: list[Any] = field(default_factory=list)
    schedules: list[Any] = field(default_factory=list)
