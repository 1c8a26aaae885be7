"""Sans-IO parser and command encoder for Plantower PMS5003 / PMS7003 particulate sensors.

Resynchronises on the start characters; a candidate that fails its length or check code
costs one byte, so a good frame right behind a broken one is never lost.
"""

from __future__ import annotations

from . import plantower_constants as C
from .events import BadFrame, Event, Frame, Sample
from .scanner import FrameScanner


def checksum(data: bytes | bytearray) -> int:
    return sum(data) & 0xFFFF


def command(cmd: int, data: int = 0) -> bytes:
    """A host command frame: 42 4D CMD DATAH DATAL LRCH LRCL."""
    body = C.START + bytes((cmd, (data >> 8) & 0xFF, data & 0xFF))
    return body + checksum(body).to_bytes(2, "big")


def encode_data_frame(words: tuple[int, ...] | list[int]) -> bytes:
    """A measurement frame carrying ``words`` (12 or 13 data words); used by tests and peers."""
    values = list(words) + [0] * (C.DATA_WORDS - len(words))
    body = C.START + C.DATA_LENGTH.to_bytes(2, "big") + b"".join(w.to_bytes(2, "big") for w in values)
    return body + checksum(body).to_bytes(2, "big")


class PlantowerParser(FrameScanner):
    START = C.START

    def frame_at(self, buf: bytearray, pos: int) -> tuple[Event, int] | None:
        if len(buf) - pos < C.HEADER_SIZE:
            return None
        length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
        if length not in (C.DATA_LENGTH, C.REPLY_LENGTH):
            return BadFrame("length", C.HEADER_SIZE), pos + 1
        size = C.HEADER_SIZE + length
        if len(buf) - pos < size:
            return None
        frame = bytes(buf[pos : pos + size])
        if checksum(frame[: -C.CHECK_SIZE]) != int.from_bytes(frame[-C.CHECK_SIZE :], "big"):
            return BadFrame("checksum", size), pos + 1
        return _decode(frame, length), pos + size


def _decode(frame: bytes, length: int) -> Frame:
    if length == C.REPLY_LENGTH:
        return Frame("reply", command=frame[4])
    samples = tuple(
        Sample(name, int.from_bytes(frame[4 + 2 * i : 6 + 2 * i], "big"), unit)
        for i, (name, unit) in enumerate(C.DATA_FIELDS)
    )
    return Frame("data", samples)
