"""What the engine knows of the world: each point's latest reading, the windows rules average
over, and when a point has been silent too long; plus the ``Env`` expressions read it through.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from typing import Protocol

from ..model import Reading, Value
from .expr import EvalError
from .timeofday import SiteTimes, SunSpec


class NoValue(EvalError):
    """A point has no reading yet: the rule waits quietly instead of raising an error."""


class Inputs:
    """Owns the latest value and time of every point the rules read and the recent readings
    of points they take windows over; ``started_at`` stands in for a point never heard."""

    def __init__(self, *, now: float):
        self.started_at = now
        self.latest: dict[str, tuple[Value, float]] = {}
        self.windows: dict[str, collections.deque[tuple[float, float]]] = {}
        #: point -> the longest window any rule takes over it, in seconds
        self.window_spans: dict[str, float] = {}

    def keep_windows(self, spans: Mapping[str, float]) -> None:
        """Keep windows for ``spans`` only (the rule set changed)."""
        self.window_spans = dict(spans)
        for point in list(self.windows):
            if point not in spans:
                del self.windows[point]

    def prime(self, readings: Iterable[Reading]) -> None:
        """Fill latest values and windows from history, oldest first."""
        for r in sorted(readings, key=lambda r: r.ts):
            self.record(r)

    def record(self, r: Reading) -> bool:
        """Take a reading; False when it is older than the one already known (ignored)."""
        current = self.latest.get(r.point)
        if current is not None and r.ts < current[1]:
            return False
        self.latest[r.point] = (r.value, r.ts)
        span = self.window_spans.get(r.point)
        if span is not None and isinstance(r.value, int | float) and not isinstance(r.value, bool):
            window = self.windows.setdefault(r.point, collections.deque())
            window.append((r.ts, float(r.value)))
            cutoff = r.ts - span
            while window and window[0][0] < cutoff:
                window.popleft()
        return True

    def last_seen(self, point: str) -> float:
        """When ``point`` last reported; the engine's start for one that never did."""
        latest = self.latest.get(point)
        return latest[1] if latest is not None else self.started_at

    def silent_at(self, point: str, seconds: float) -> float:
        """When ``point`` will have been silent for ``seconds``, unless it reports first."""
        return self.last_seen(point) + seconds

    def silent(self, point: str, seconds: float, now: float) -> bool:
        """True when ``point`` has sent nothing for ``seconds`` at ``now``."""
        return now >= self.silent_at(point, seconds)


class Clock(Protocol):
    """Anything that says what time it is for the rules (the engine)."""

    @property
    def now(self) -> float: ...


class InputsEnv:
    """The ``Env`` an expression evaluates against: ``inputs`` at the clock ``now()`` gives."""

    __slots__ = ("_clock", "inputs", "times")

    def __init__(self, inputs: Inputs, times: SiteTimes, clock: Clock):
        self.inputs = inputs
        self.times = times
        self._clock = clock

    def value(self, point: str) -> Value:
        latest = self.inputs.latest.get(point)
        if latest is None:
            raise NoValue(f"no reading of {point} yet")
        return latest[0]

    def age(self, point: str) -> float:
        return self.now() - self.inputs.last_seen(point)

    def window(self, point: str, seconds: float) -> list[float]:
        since = self.now() - seconds
        return [v for ts, v in self.inputs.windows.get(point, ()) if ts >= since]

    def now(self) -> float:
        return self._clock.now

    def local_hour(self) -> float:
        return self.times.local_hour(self.now())

    def weekday(self) -> int:
        return self.times.local(self.now()).weekday()

    def sun_between(self, start: SunSpec, end: SunSpec) -> bool:
        return self.times.sun_between(start, end, self.now())

    def sun_elevation(self) -> float:
        return self.times.sun_elevation(self.now())
