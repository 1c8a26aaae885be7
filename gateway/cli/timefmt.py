"""Times and numbers as the offline CLI shows them: the site's time zone with its offset, values
without float noise for people and exact for files, and the time forms ``--since`` accepts.

Numbers: a table shows a float at 15 significant digits, which is every digit a double holds
exactly, so ``2301 * 0.1`` (230.10000000000002) reads 230.1 and 0.1 + 0.2 reads 0.3 while any
value written with 15 digits or fewer comes back unchanged. CSV and JSON files carry ``repr``,
the shortest text that reads back as the very same double, so an export loses nothing
(spreadsheets show 15 digits anyway).

Status tables use the compact forms at the end: ``short_time`` (time of day when it is today)
and ``duration``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from ..model import Value
from ..units import parse_duration

#: marks a time taken before the gateway's clock was synchronised; explained once by UNSYNCED_NOTE
UNSYNCED_MARK = "*"
UNSYNCED_NOTE = (
    "* clock not synced: the gateway took these times before its clock was set "
    "(no NTP yet after a boot); they may be wrong"
)

SINCE_FORMS = (
    "a duration back from now (30s, 15m, 2h, 7d, 1h30m) or a date and time "
    "(2026-12-02, 2026-12-02T06:00, 2026-12-02 06:00:00+01:00)"
)


@dataclass(frozen=True, slots=True)
class TimeFormat:
    """Formats epoch seconds in one zone; ``zone`` None is this machine's local zone."""

    zone: dt.tzinfo | None
    zone_name: str

    @classmethod
    def for_site(cls, timezone: str | None, *, utc: bool = False) -> TimeFormat:
        """The site's zone (an IANA name from the config), UTC with ``utc``, or, with no
        config to say, this machine's zone (on the box normally set to the site's)."""
        if utc:
            return cls(dt.UTC, "UTC")
        if timezone:
            return cls(zoneinfo.ZoneInfo(timezone), timezone)
        return cls(None, "this machine's time zone")

    def _datetime(self, ts: float) -> dt.datetime:
        when = dt.datetime.fromtimestamp(ts, self.zone)
        return when if self.zone is not None else when.astimezone()

    def iso(self, ts: float) -> str:
        """For files: ``2026-12-02T06:00:01.250+01:00``, UTC as ``...Z``."""
        text = self._datetime(ts).isoformat(timespec="milliseconds")
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def text(self, ts: float) -> str:
        """For people: the same instant with a space between date and time."""
        return self.iso(ts).replace("T", " ", 1)

    def parse(self, text: str, now: float) -> float:
        """Epoch seconds from a duration back from ``now`` or an ISO date/time; a time without
        an offset is in this zone. Raises ValueError naming the accepted forms."""
        try:
            return now - parse_duration(text)
        except ValueError:
            pass
        try:
            when = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"'{text}' is not a time; write {SINCE_FORMS}. A time without an "
                f"offset is in {self.zone_name}"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.zone) if self.zone is not None else when.astimezone()
        return when.timestamp()


def show_value(value: Value) -> str:
    """A value for a person: floats at 15 significant digits, bools as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".15g")
    return str(value)


def exact_value(value: Value) -> str:
    """A value for a CSV file: the shortest text that reads back as exactly this value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


# -- compact forms for status tables ------------------------------------------------------


def site_zone(name: str, *, utc: bool = False) -> dt.tzinfo:
    """The site's zone (``[gateway] timezone``), or UTC when asked or when it is unknown."""
    if utc:
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def offset_text(zone: dt.tzinfo, at: float) -> str:
    """'+01:00', or 'Z' for UTC."""
    offset = dt.datetime.fromtimestamp(at, zone).utcoffset() or dt.timedelta(0)
    if not offset:
        return "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def zone_text(zone: dt.tzinfo, at: float) -> str:
    """'Europe/Amsterdam (+01:00)' or 'UTC'."""
    name = getattr(zone, "key", None) or "UTC"
    offset = offset_text(zone, at)
    return "UTC" if offset == "Z" and name == "UTC" else f"{name} ({'+00:00' if offset == 'Z' else offset})"


def short_time(ts: float | None, zone: dt.tzinfo, now: float) -> str:
    """'14:03:22+01:00' today, '11-30 14:03+01:00' on another day, '-' for never."""
    if ts is None:
        return "-"
    when = dt.datetime.fromtimestamp(ts, zone)
    today = dt.datetime.fromtimestamp(now, zone).date()
    offset = offset_text(zone, ts)
    if when.date() == today:
        return f"{when:%H:%M:%S}{offset}"
    if when.year == today.year:
        return f"{when:%m-%d %H:%M}{offset}"
    return f"{when:%Y-%m-%d %H:%M}{offset}"


def duration(seconds: float | None) -> str:
    """'45 s', '12 min', '3 h 05 min', '4 d 2 h'."""
    if seconds is None:
        return "-"
    seconds = max(float(seconds), 0.0)
    if seconds < 100:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
