"""``sun = "sunset+15m"``: a sun event with an offset, for the site's location (astral)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...options import Table
from ..timeofday import SiteTimes, SunSpec, parse_sun_spec
from .base import Compile, Trigger

KEY = "sun"


@dataclass(frozen=True, slots=True)
class SunEvent(Trigger):
    """Due at a sun event of the site's location (sunrise, sunset, dawn, dusk, noon) with
    its offset."""

    spec: SunSpec

    uses_sun: ClassVar[bool] = True

    def next_time(self, times: SiteTimes, after: float) -> float | None:
        return times.next_sun(self.spec, after)


def parse(table: Table, readable: Mapping[str, Any], compile: Compile) -> Trigger | None:
    text = table.str("sun")
    table.finish()
    if text is None:
        return None
    try:
        spec = parse_sun_spec(text)
    except ValueError as exc:
        table.error("sun", str(exc))
        return None
    return SunEvent(f"sun {text}", spec)
