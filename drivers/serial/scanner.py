"""The resynchronising frame scan every binary or framed serial protocol shares.

A sensor on a serial line starts mid-frame, loses bytes and sends noise: the scan looks for
the protocol's start marker, asks the protocol what stands there (a frame, or why the bytes
are not one and where to look next), and keeps a partial frame for the next read. Pure code
over bytes; each protocol implements only ``frame_at``.
"""

from __future__ import annotations

import abc

from .events import Event, skip_to_start


class FrameScanner(abc.ABC):
    """A parser fed bytes as they arrive; ``feed`` returns the events they complete."""

    #: the bytes every frame starts with
    START: bytes

    def __init__(self) -> None:
        self._buf = bytearray()

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Event]:
        buf = self._buf
        buf += data
        out: list[Event] = []
        pos = 0
        while True:
            pos, found = skip_to_start(buf, self.START, pos, out)
            if not found:
                break
            step = self.frame_at(buf, pos)
            if step is None:
                break
            event, pos = step
            out.append(event)
        del buf[:pos]
        return out

    @abc.abstractmethod
    def frame_at(self, buf: bytearray, pos: int) -> tuple[Event, int] | None:
        """What the bytes from ``pos`` (at a start marker) are: the frame, or the reason they
        are not one (``BadFrame``, ``Junk``), with the position where the scan goes on
        (past the frame, or ``pos + 1`` to resynchronise); None when more bytes are needed."""
