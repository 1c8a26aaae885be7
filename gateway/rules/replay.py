"""Dry runs: drive the engine over a recorded timeline and collect what it would have done.

Used by ``gateway rules test --replay`` and the data-driven tests; touches no actuator.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass

from ..model import Reading
from .engine import Engine
from .model import Command, FailSafeCommand, PublishCommand

#: a guard against a timer that keeps asking for the same instant
_MAX_TICKS_PER_STEP = 100_000


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """The commands a replay of readings produced, and how many readings it fed."""

    commands: list[Command]
    readings: int


def replay(engine: Engine, readings: Iterable[Reading], *, end: float | None = None) -> ReplayResult:
    """Feed ``readings`` in time order, firing every timer due between them, up to ``end``."""
    out: list[Command] = []
    count = 0
    for reading in sorted(readings, key=lambda r: r.ts):
        advance(engine, reading.ts, out)
        _feed(engine, [reading], reading.ts, out)
        count += 1
    if end is not None:
        advance(engine, end, out)
    return ReplayResult(out, count)


def _feed(engine: Engine, batch: list[Reading], now: float, out: list[Command], depth: int = 0) -> None:
    commands = engine.feed(batch, now)
    out.extend(commands)
    virtual = [Reading(c.point, c.value, c.ts, c.unit) for c in commands if isinstance(c, PublishCommand)]
    if virtual and depth < 8:
        _feed(engine, virtual, now, out, depth + 1)


def advance(engine: Engine, until: float, out: list[Command]) -> None:
    """Run every timer due up to ``until``, in order, as the live component would."""
    for _ in range(_MAX_TICKS_PER_STEP):
        deadline = engine.next_deadline()
        if deadline is None or deadline > until:
            break
        commands = engine.tick(max(deadline, engine.now))
        out.extend(commands)
        virtual = [Reading(c.point, c.value, c.ts, c.unit) for c in commands if isinstance(c, PublishCommand)]
        if virtual:
            _feed(engine, virtual, engine.now, out)
    engine.now = max(engine.now, until)


def format_offset(seconds: float) -> str:
    """+1h2m3s style offsets, as written in test case files."""
    sign = "-" if seconds < 0 else "+"
    rest = abs(seconds)
    parts = []
    for unit, scale in (("h", 3600), ("m", 60)):
        if rest >= scale:
            whole = int(rest // scale)
            parts.append(f"{whole}{unit}")
            rest -= whole * scale
    if rest or not parts:
        parts.append(f"{rest:g}s" if rest >= 1 or not rest else f"{rest * 1000:g}ms")
    return sign + "".join(parts)


def format_command(command: Command, start: float | None = None) -> str:
    """One line per command: when, rule, kind, point, value (JSON)."""
    if start is None:
        when = (
            dt.datetime.fromtimestamp(command.ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        )
    else:
        when = format_offset(command.ts - start)
    value = json.dumps(command.value)
    reason = f"  ({command.reason})" if isinstance(command, FailSafeCommand) and command.reason else ""
    return f"{when} {command.rule} {command.kind} {command.point} {value}{reason}"
