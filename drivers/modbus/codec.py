"""Register values <-> engineering values: data types, word and byte order, scale and offset.

Sans-IO: lists of 16-bit registers and bits in, Python values out (and back for writes).
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.model import Value


class DataType(enum.StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


class WordOrder(enum.StrEnum):
    """Byte layout of a multi-byte value, A being the most significant byte.

    ABCD is big-endian (the Modbus default); CDAB swaps the 16-bit words; BADC swaps the
    bytes inside each word; DCBA is fully little-endian. For 64-bit values the same rule
    extends to four words (ABCDEFGH, GHEFCDAB, BADCFEHG, HGFEDCBA).
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"

    @property
    def swaps_words(self) -> bool:
        return self in (WordOrder.CDAB, WordOrder.DCBA)

    @property
    def swaps_bytes(self) -> bool:
        return self in (WordOrder.BADC, WordOrder.DCBA)


_REGISTERS = {
    DataType.BOOL: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.FLOAT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT64: 4,
}
_STRUCT = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.INT64: ">q",
    DataType.UINT64: ">Q",
    DataType.FLOAT32: ">f",
    DataType.FLOAT64: ">d",
}
INTEGER_TYPES = (
    DataType.INT16,
    DataType.UINT16,
    DataType.INT32,
    DataType.UINT32,
    DataType.INT64,
    DataType.UINT64,
)
FLOAT_TYPES = (DataType.FLOAT32, DataType.FLOAT64)


class EncodeError(ValueError):
    """A value that does not fit the point's data type; the message says why."""


@dataclass(frozen=True, slots=True)
class Encoding:
    """How one point's value is laid out in its registers (or one bit)."""

    type: DataType
    order: WordOrder = WordOrder.ABCD
    scale: float = 1.0
    offset: float = 0.0
    length: int = 0  # registers, strings only
    bit: int | None = None  # a single bit of a 16-bit register

    @property
    def registers(self) -> int:
        if self.type is DataType.STRING:
            return self.length
        return _REGISTERS[self.type]

    @property
    def scaled(self) -> bool:
        return self.scale != 1.0 or self.offset != 0.0


def register_count(encoding: Encoding) -> int:
    return encoding.registers


def registers_to_bytes(registers: Sequence[int], order: WordOrder) -> bytes:
    """Big-endian bytes (A first) of the value held in ``registers`` laid out as ``order``."""
    words = list(registers)
    if order.swaps_words:
        words.reverse()
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    if order.swaps_bytes:
        raw = _swap_pairs(raw)
    return raw


def bytes_to_registers(raw: bytes, order: WordOrder) -> list[int]:
    """The inverse of ``registers_to_bytes``."""
    if order.swaps_bytes:
        raw = _swap_pairs(raw)
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    if order.swaps_words:
        words.reverse()
    return words


def _swap_pairs(raw: bytes) -> bytes:
    out = bytearray(raw)
    out[0::2], out[1::2] = raw[1::2], raw[0::2]
    return bytes(out)


def decode_registers(registers: Sequence[int], encoding: Encoding) -> Value:
    """The engineering value of a point from its raw registers."""
    if len(registers) != encoding.registers:
        raise ValueError(f"{encoding.type} needs {encoding.registers} registers, got {len(registers)}")
    kind = encoding.type
    if kind is DataType.STRING:
        # Strings are byte streams: only the byte order inside a word applies, never word swaps.
        raw = b"".join(r.to_bytes(2, "big") for r in registers)
        if encoding.order.swaps_bytes:
            raw = _swap_pairs(raw)
        return raw.split(b"\x00", 1)[0].decode("latin-1").rstrip(" ")
    if kind is DataType.BOOL:
        word = registers[0]
        return bool(word >> encoding.bit & 1) if encoding.bit is not None else word != 0
    if encoding.bit is not None:
        return int(registers[0] >> encoding.bit & 1)
    (raw_value,) = struct.unpack(_STRUCT[kind], registers_to_bytes(registers, encoding.order))
    if kind is DataType.FLOAT32:
        # Report what the device meant (230.1), not the nearest double of a float32.
        raw_value = float(f"{raw_value:.7g}") if math.isfinite(raw_value) else raw_value
    return apply_scale(raw_value, encoding)


def apply_scale(raw: int | float, encoding: Encoding) -> Value:
    if not encoding.scaled:
        return raw
    value = raw * encoding.scale + encoding.offset
    return float(f"{value:.12g}")


def decode_bits(bits: Sequence[bool], encoding: Encoding) -> Value:
    return bool(bits[0])


def encode_registers(value: Value, encoding: Encoding) -> list[int]:
    """The registers to write so the device holds ``value``; raises EncodeError."""
    kind = encoding.type
    if kind is DataType.STRING:
        if not isinstance(value, str):
            raise EncodeError(f"expects text, got {value!r}")
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise EncodeError(f"text must be Latin-1, got {value!r}") from exc
        capacity = encoding.length * 2
        if len(raw) > capacity:
            raise EncodeError(f"text is {len(raw)} bytes, the point holds {capacity}")
        raw = raw.ljust(capacity, b"\x00")
        if encoding.order.swaps_bytes:
            raw = _swap_pairs(raw)
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, capacity, 2)]
    if kind is DataType.BOOL:
        if encoding.bit is not None:
            raise EncodeError("a single bit of a register cannot be written on its own")
        return [1 if _as_bool(value) else 0]
    if encoding.bit is not None:
        raise EncodeError("a single bit of a register cannot be written on its own")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EncodeError(f"expects a number, got {value!r}")
    raw_value: int | float = (value - encoding.offset) / encoding.scale if encoding.scaled else value
    if kind in INTEGER_TYPES:
        if isinstance(raw_value, float):
            if not math.isfinite(raw_value):
                raise EncodeError(f"cannot write {value!r} to an integer register")
            rounded = round(raw_value)
            if abs(rounded - raw_value) > 1e-6 and not encoding.scaled:
                raise EncodeError(f"expects a whole number, got {value!r}")
            raw_value = rounded
        low, high = integer_range(kind)
        if not low <= raw_value <= high:
            raise EncodeError(
                f"{value!r} is out of range for {kind} ({low}..{high}"
                f"{' before scale/offset' if encoding.scaled else ''})"
            )
    raw = struct.pack(_STRUCT[kind], raw_value)
    return bytes_to_registers(raw, encoding.order)


def encode_bit(value: Value) -> bool:
    return _as_bool(value)


def _as_bool(value: Value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("on", "true", "off", "false"):
        return value.lower() in ("on", "true")
    raise EncodeError(f"expects true/false (or 1/0, on/off), got {value!r}")


def integer_range(kind: DataType) -> tuple[int, int]:
    bits = _REGISTERS[kind] * 16
    if kind.value.startswith("u"):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
