"""What every serial frame parser emits: decoded frames, bad frames and skipped junk.

Parsers are sans-IO: ``feed(bytes) -> list[Event]``; they keep their own buffer between calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.model import Value


@dataclass(frozen=True, slots=True)
class Sample:
    """One decoded value: ``name`` is the point name within the device."""

    name: str
    value: Value
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame that passed every check. ``kind`` names the frame type (e.g. "data", "GGA").

    ``text`` holds the decoded line for line-oriented protocols so a command can match its reply.
    """

    kind: str
    samples: tuple[Sample, ...] = ()
    text: str | None = None
    command: int | None = None


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame candidate that failed a check; ``reason`` is a short health counter key."""

    reason: str
    size: int
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Junk:
    """Bytes skipped while looking for the start of a frame."""

    size: int


Event = Frame | BadFrame | Junk


def skip_to_start(buf: bytearray, marker: bytes, pos: int, out: list[Event]) -> tuple[int, bool]:
    """Move ``pos`` to the next ``marker``, reporting skipped bytes as one Junk event.

    Returns (new position, found). When no marker is left, trailing bytes that could be the
    first half of a marker split across reads are kept for the next feed.
    """
    start = buf.find(marker, pos)
    if start < 0:
        keep = next((k for k in range(len(marker) - 1, 0, -1) if buf.endswith(marker[:k])), 0)
        end = max(pos, len(buf) - keep)
        if end > pos:
            out.append(Junk(end - pos))
        return end, False
    if start > pos:
        out.append(Junk(start - pos))
    return start, True


class Parser(Protocol):
    def feed(self, data: bytes) -> list[Event]: ...

    def reset(self) -> None: ...
