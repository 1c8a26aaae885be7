"""``stale = "dev/x"`` with ``after = "10m"``: the point has sent nothing for that long (once,
until it reports again)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...options import Table
from .base import Compile, Silence, Trigger, known_point

KEY = "stale"


@dataclass(frozen=True, slots=True)
class Silent(Trigger):
    """Fires once when ``point`` has sent nothing for ``seconds``, again only after it reports."""

    point: str
    seconds: float

    @property
    def silence(self) -> Silence | None:
        return Silence(self.point, self.seconds)


def parse(table: Table, readable: Mapping[str, Any], compile: Compile) -> Trigger | None:
    point = known_point(table, "stale", table.str("stale"), readable)
    after = table.duration("after", min=1)
    table.finish()
    if point is None or after is None:
        return None
    return Silent(f"{point} silent for {after:g}s", point, after)
