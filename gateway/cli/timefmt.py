"""Times and durations for people: the site's time zone with its offset, short durations.

Shared by CLI commands; pure code over timestamps (the caller says what "now" is).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo


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
