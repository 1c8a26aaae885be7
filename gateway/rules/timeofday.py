"""Local time, sun events and cron schedules for the site, computed from UTC epoch seconds.

Sun times come from astral for the site's latitude/longitude; cron schedules from croniter
in the site's time zone. Pure functions over numbers: no clock is read here.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..lazyimport import deferred_imports
from ..units import parse_duration

if TYPE_CHECKING:
    from croniter import croniter as Croniter

SUN_EVENTS = ("sunrise", "sunset", "dawn", "dusk", "noon")
_SUN_RE = re.compile(r"^\s*(sunrise|sunset|dawn|dusk|noon)\s*(?:([+-])\s*(\S+))?\s*$")
_CLOCK_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")

SunSpec = tuple[str, float]  # (event, offset seconds)


def parse_sun_spec(text: str) -> SunSpec:
    """'sunset+15m' -> ('sunset', 900.0); raises ValueError with a readable message."""
    match = _SUN_RE.match(text)
    if match is None:
        raise ValueError(
            f"'{text}' is not a sun event; write e.g. sunset, sunrise-30m or dusk+1h"
            f" (events: {', '.join(SUN_EVENTS)})"
        )
    offset = 0.0
    if match.group(2):
        offset = parse_duration(match.group(3))
        if match.group(2) == "-":
            offset = -offset
    return match.group(1), offset


def parse_clock_time(text: str) -> float:
    """'22:30' -> 22.5 (hours); raises ValueError."""
    match = _CLOCK_RE.match(text)
    if match is None or int(match.group(1)) > 24 or int(match.group(2)) > 59:
        raise ValueError(f"'{text}' is not a time of day; write HH:MM such as 06:30 or 22:00")
    return int(match.group(1)) + int(match.group(2)) / 60 + int(match.group(3) or 0) / 3600


@dataclass
class SiteTimes:
    """Sun events and local time for one site; sun times are cached per local date."""

    timezone: str = "UTC"
    latitude: float | None = None
    longitude: float | None = None
    _tz: dt.tzinfo = field(init=False, repr=False)
    _sun_cache: dict[tuple[dt.date, str], float | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._tz = zoneinfo.ZoneInfo(self.timezone)

    @property
    def has_location(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    def local(self, ts: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, self._tz)

    def local_hour(self, ts: float) -> float:
        t = self.local(ts)
        return t.hour + t.minute / 60 + t.second / 3600

    def sun_event(self, day: dt.date, event: str) -> float | None:
        """Epoch seconds of ``event`` on the local ``day``; None when the sun does not do it
        that day (polar day or night) or the site has no location."""
        key = (day, event)
        if key in self._sun_cache:
            return self._sun_cache[key]
        result: float | None = None
        if self.has_location:
            from astral import Observer
            from astral import sun as astral_sun

            observer = Observer(latitude=self.latitude or 0.0, longitude=self.longitude or 0.0)
            try:
                when = getattr(astral_sun, event)(observer, date=day, tzinfo=self._tz)
                result = when.timestamp()
            except ValueError:
                result = None
        if len(self._sun_cache) > 64:
            self._sun_cache.clear()
        self._sun_cache[key] = result
        return result

    def sun_time(self, day: dt.date, spec: SunSpec) -> float | None:
        base = self.sun_event(day, spec[0])
        return None if base is None else base + spec[1]

    def next_sun(self, spec: SunSpec, after: float) -> float | None:
        """The first occurrence of ``spec`` strictly after ``after`` (within 400 days)."""
        day = self.local(after).date() - dt.timedelta(days=1)
        for _ in range(400):
            when = self.sun_time(day, spec)
            if when is not None and when > after:
                return when
            day += dt.timedelta(days=1)
        return None

    def sun_between(self, start: SunSpec, end: SunSpec, ts: float) -> bool:
        """True when ``ts`` lies in a window from ``start`` to the following ``end``."""
        if not self.has_location:
            return False
        today = self.local(ts).date()
        for day in (today - dt.timedelta(days=1), today):
            begin = self.sun_time(day, start)
            if begin is None or begin > ts:
                continue
            finish = self.next_sun(end, begin)
            if finish is not None and ts < finish:
                return True
        return False

    def sun_elevation(self, ts: float) -> float:
        if not self.has_location:
            return 0.0
        from astral import Observer
        from astral import sun as astral_sun

        observer = Observer(latitude=self.latitude or 0.0, longitude=self.longitude or 0.0)
        return float(astral_sun.elevation(observer, dt.datetime.fromtimestamp(ts, dt.UTC)))

    def next_cron(self, expression: str, after: float) -> float:
        return float(_croniter()(expression, self.local(after)).get_next(float))


def _croniter() -> type[Croniter]:
    """croniter's class, imported the first time a rule needs it.

    Its dateutil imports importlib.resources (with tempfile, shutil, bz2 and lzma: about
    0.8 MB) for tz database files croniter never asks for; a stand-in takes its place while
    croniter imports."""
    with deferred_imports({"importlib.resources": ()}):
        from croniter import croniter

    return croniter


def check_cron(expression: str) -> str | None:
    """Why ``expression`` is not a valid cron schedule, or None."""
    croniter = _croniter()
    if not isinstance(expression, str) or not croniter.is_valid(expression):
        return (
            f"'{expression}' is not a cron schedule; write five fields "
            "'minute hour day month weekday', e.g. '0 22 * * *' or '*/15 * * * 1-5'"
        )
    return None
