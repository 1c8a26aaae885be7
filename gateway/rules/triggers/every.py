"""``every = "5m"``: a fixed interval, started again after a restart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...options import Table
from ..timeofday import SiteTimes
from .base import Compile, Trigger

KEY = "every"


@dataclass(frozen=True, slots=True)
class Every(Trigger):
    """Due every ``seconds`` from the start; the interval is not saved across a restart."""

    seconds: float

    saves_schedule: ClassVar[bool] = False

    def next_time(self, times: SiteTimes, after: float) -> float | None:
        return after + self.seconds


def parse(table: Table, readable: Mapping[str, Any], compile: Compile) -> Trigger | None:
    seconds = table.duration("every", min=1)
    table.finish()
    return None if seconds is None else Every(f"every {seconds:g}s", seconds)
