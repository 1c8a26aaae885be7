"""Checks on raw RTU bytes seen on the line: the CRC and what a garbled reply looks like.

Pure functions over bytes; the bus uses them to tell a CRC error from a silent slave.
"""

from __future__ import annotations

from .constants import EXCEPTION_FLAG

_RTU_MIN_FRAME = 4  # unit id, function code, two CRC bytes


def crc16(frame: bytes) -> int:
    """The Modbus RTU CRC of ``frame`` as the integer carried low byte first on the wire."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + crc16(frame).to_bytes(2, "little")


def rtu_crc_ok(frame: bytes) -> bool:
    """True when the last two bytes of an RTU ``frame`` are the CRC of the rest."""
    if len(frame) < _RTU_MIN_FRAME:
        return False
    return crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def looks_like_reply(data: bytes, unit: int, function: int) -> bool:
    """True when ``data`` starts like an RTU reply from ``unit`` to ``function``.

    Used after a timeout: bytes that look like the awaited reply but failed to decode
    mean the line corrupted it (CRC error), not that the slave is absent.
    """
    if len(data) < 2:
        return False
    return data[0] == unit and data[1] & ~EXCEPTION_FLAG & 0xFF == function
