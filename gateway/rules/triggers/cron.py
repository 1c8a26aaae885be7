"""``cron = "0 22 * * *"``: a schedule in the site's time zone (croniter)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...options import Table
from ..timeofday import SiteTimes, check_cron
from .base import Compile, Trigger

KEY = "cron"


@dataclass(frozen=True, slots=True)
class Cron(Trigger):
    """Due at each time of a cron ``expression`` in the site's time zone."""

    expression: str

    def next_time(self, times: SiteTimes, after: float) -> float | None:
        return times.next_cron(self.expression, after)


def parse(table: Table, readable: Mapping[str, Any], compile: Compile) -> Trigger | None:
    text = table.str("cron")
    table.finish()
    if text is None:
        return None
    problem = check_cron(text)
    if problem:
        table.error("cron", problem)
        return None
    return Cron(f"cron '{text}'", text)
