"""The reading value type and point naming shared by every part of the gateway.

A point is always named ``device/point``; a reading is one timestamped value of one point.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

Value = bool | int | float | str

_NAME_PART = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
NAME_PART_RE = re.compile(rf"^{_NAME_PART}$")
POINT_NAME_RE = re.compile(rf"^{_NAME_PART}/{_NAME_PART}(/{_NAME_PART})*$")


class Quality(enum.IntEnum):
    """How far a value can be trusted; stored as two bits of a reading's flags."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one point. ``ts`` is UTC seconds since the epoch.

    ``clock_synced`` is False when the timestamp was taken before the system clock was
    synchronised (a Pi boots with no RTC), so consumers can treat the time with suspicion.
    """

    point: str
    value: Value
    ts: float
    unit: str | None = None
    quality: Quality = Quality.GOOD
    clock_synced: bool = True

    @property
    def device(self) -> str:
        return self.point.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A reading as it comes back from the buffer, with its monotonic sequence number."""

    seq: int
    point: str
    value: Value
    ts: float
    unit: str | None
    quality: Quality
    clock_synced: bool


def point_name(device: str, point: str) -> str:
    return f"{device}/{point}"


def is_valid_point_name(name: str) -> bool:
    return POINT_NAME_RE.match(name) is not None


def is_valid_name_part(name: str) -> bool:
    return NAME_PART_RE.match(name) is not None
