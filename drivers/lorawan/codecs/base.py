"""What every payload codec offers and returns, and the checks applied to its output.

Codec output is untrusted: it is flattened to scalar fields and refused when it is junk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

MAX_FIELDS = 128
MAX_STRING = 256
#: deeper nesting is junk, and would otherwise end in a RecursionError
MAX_DEPTH = 16
#: values, objects and lists visited, empty ones included (YAML aliases can repeat one many times)
MAX_NODES = 16 * MAX_FIELDS


class CodecError(Exception):
    """A codec that threw, ran out of budget or returned junk; ``reason`` is a counter name."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DecodeResult:
    data: dict[str, Any]
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Downlink:
    fport: int
    payload: bytes


class Codec(Protocol):
    name: str

    def decode_uplink(self, fport: int, payload: bytes) -> DecodeResult: ...

    def encode_downlink(self, data: Mapping[str, Any]) -> Downlink: ...


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """Nested objects and lists become ``parent_child`` / ``list_0`` scalar fields."""
    out: dict[str, bool | int | float | str] = {}
    visited = [0]

    def visit(name: str, value: Any, depth: int = 0) -> None:
        visited[0] += 1
        if len(out) > MAX_FIELDS or visited[0] > MAX_NODES:
            raise CodecError("junk", f"codec returned more than {MAX_FIELDS} fields")
        if depth > MAX_DEPTH and isinstance(value, Mapping | list | tuple):
            raise CodecError("junk", f"codec returned objects nested more than {MAX_DEPTH} deep")
        if isinstance(value, Mapping):
            for key, inner in value.items():
                visit(f"{name}_{key}" if name else str(key), inner, depth + 1)
        elif isinstance(value, list | tuple):
            for index, inner in enumerate(value):
                visit(f"{name}_{index}", inner, depth + 1)
        elif isinstance(value, bool | int | str):
            if isinstance(value, str) and len(value) > MAX_STRING:
                raise CodecError("junk", f"field '{name}' is a string of {len(value)} characters")
            out[name] = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise CodecError("junk", f"field '{name}' is {value}")
            out[name] = value
        elif value is None:
            return
        else:
            raise CodecError("junk", f"field '{name}' has unsupported type {type(value).__name__}")

    visit(prefix, dict(data))
    return out


def tts_result(raw: Any, codec: str) -> DecodeResult:
    """Check a ``decodeUplink`` return value in The Things Stack shape."""
    if not isinstance(raw, Mapping):
        raise CodecError("junk", f"codec {codec} returned {type(raw).__name__}, not an object")
    errors = _strings(raw.get("errors"), codec, "errors")
    warnings = _strings(raw.get("warnings"), codec, "warnings")
    data = raw.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise CodecError("junk", f"codec {codec} returned 'data' of type {type(data).__name__}")
    return DecodeResult(dict(data), errors, warnings)


def tts_downlink(raw: Any, codec: str) -> Downlink:
    if not isinstance(raw, Mapping):
        raise CodecError("junk", f"codec {codec} encodeDownlink returned {type(raw).__name__}")
    errors = _strings(raw.get("errors"), codec, "errors")
    if errors:
        raise CodecError("codec_errors", f"codec {codec} refused the downlink: {'; '.join(errors)}")
    fport = raw.get("fPort")
    data = raw.get("bytes")
    if isinstance(fport, bool) or not isinstance(fport, int) or not 1 <= fport <= 223:
        raise CodecError("junk", f"codec {codec} encodeDownlink returned fPort {fport!r}")
    if not isinstance(data, list) or not all(isinstance(b, int) and 0 <= b <= 255 for b in data):
        raise CodecError("junk", f"codec {codec} encodeDownlink returned bytes that are not 0..255")
    return Downlink(fport, bytes(data))


def _strings(value: Any, codec: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CodecError("junk", f"codec {codec} returned '{key}' that is not a list")
    return tuple(str(v) for v in value)
