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


class Parser(Protocol):
    def feed(self, data: bytes) -> list[Event]: ...

    def reset(self) -> None: ...
