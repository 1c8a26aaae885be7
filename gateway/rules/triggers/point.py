"""``point = "dev/x"``: a reading of one point; it changes (optionally ``to`` a value), or
crosses ``above`` or ``below`` a threshold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...model import Reading, Value
from ...options import Table
from .base import NOT_FIRED, Compile, Evaluate, Fired, Trigger, known_point

KEY = "point"


@dataclass(frozen=True, slots=True)
class PointChanges(Trigger):
    """Fires when a reading of ``point`` differs from the one before (the first included), or
    with ``to``, when it changes to that value."""

    point: str
    to: Value | None = None

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.point,)

    def on_reading(self, reading: Reading, memory: dict[str, Any], key: str, evaluate: Evaluate) -> Fired:
        previous = memory.get(key)
        memory[key] = reading.value
        if self.to is not None:
            return Fired(reading.value == self.to and previous != reading.value)
        return Fired(previous != reading.value)


@dataclass(frozen=True, slots=True)
class PointCrosses(Trigger):
    """Fires when the point goes from the other side of ``threshold`` (or no reading yet) to
    ``above`` it (or below it, with ``above`` False)."""

    point: str
    threshold: float
    above: bool

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.point,)

    def on_reading(self, reading: Reading, memory: dict[str, Any], key: str, evaluate: Evaluate) -> Fired:
        value = reading.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            return NOT_FIRED
        side = value > self.threshold if self.above else value < self.threshold
        previous = memory.get(key)
        memory[key] = side
        return Fired(side and previous is not True, changed=previous != side)


def parse(table: Table, readable: Mapping[str, Any], compile: Compile) -> Trigger | None:
    point = known_point(table, "point", table.str("point"), readable)
    above = table.float("above", None)
    below = table.float("below", None)
    to = table.number_or_str("to", None)
    table.finish()
    if above is not None and below is not None:
        table.error("above", "use either above or below in one trigger; add a second trigger for the other")
        return None
    if point is None:
        return None
    if above is not None:
        return PointCrosses(f"{point} above {above:g}", point, above, above=True)
    if below is not None:
        return PointCrosses(f"{point} below {below:g}", point, below, above=False)
    return PointChanges(f"{point} changes" + (f" to {to!r}" if to is not None else ""), point, to)
