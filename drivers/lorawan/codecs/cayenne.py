"""Cayenne Low Power Payload (LPP), the built-in codec: channel/type/value triplets up,
digital and analog outputs down. Field names follow The Things Stack: ``temperature_3``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import CodecError, DecodeResult, Downlink


@dataclass(frozen=True, slots=True)
class LppType:
    code: int
    name: str
    size: int
    scale: float
    signed: bool
    axes: tuple[str, ...] = ()  # multi-value types


TYPES: dict[int, LppType] = {
    t.code: t
    for t in (
        LppType(0, "digital_in", 1, 1, False),
        LppType(1, "digital_out", 1, 1, False),
        LppType(2, "analog_in", 2, 0.01, True),
        LppType(3, "analog_out", 2, 0.01, True),
        LppType(101, "luminosity", 2, 1, False),
        LppType(102, "presence", 1, 1, False),
        LppType(103, "temperature", 2, 0.1, True),
        LppType(104, "relative_humidity", 1, 0.5, False),
        LppType(113, "accelerometer", 6, 0.001, True, ("x", "y", "z")),
        LppType(115, "barometric_pressure", 2, 0.1, False),
        LppType(134, "gyrometer", 6, 0.01, True, ("x", "y", "z")),
        LppType(136, "gps", 9, 0, True, ("latitude", "longitude", "altitude")),
    )
}
BY_NAME = {t.name: t for t in TYPES.values()}
GPS_SCALES = (0.0001, 0.0001, 0.01)
DEFAULT_DOWNLINK_FPORT = 99


def _number(raw: bytes, signed: bool, scale: float) -> float | int:
    value = int.from_bytes(raw, "big", signed=signed)
    if scale == 1:
        return value
    return round(value * scale, 6)


class CayenneLpp:
    name = "cayenne"

    def __init__(self, downlink_fport: int = DEFAULT_DOWNLINK_FPORT):
        self.downlink_fport = downlink_fport

    def decode_uplink(self, fport: int, payload: bytes) -> DecodeResult:
        data: dict[str, Any] = {}
        i = 0
        while i < len(payload):
            if i + 2 > len(payload):
                raise CodecError("threw", f"Cayenne LPP: truncated header at byte {i}")
            channel, code = payload[i], payload[i + 1]
            kind = TYPES.get(code)
            if kind is None:
                raise CodecError("threw", f"Cayenne LPP: unknown type {code} on channel {channel}")
            raw = payload[i + 2 : i + 2 + kind.size]
            if len(raw) < kind.size:
                raise CodecError("threw", f"Cayenne LPP: {kind.name} on channel {channel} is truncated")
            name = f"{kind.name}_{channel}"
            if kind.axes:
                width = kind.size // len(kind.axes)
                scales = GPS_SCALES if kind.code == 136 else (kind.scale,) * len(kind.axes)
                data[name] = {
                    axis: _number(raw[n * width : (n + 1) * width], True, scales[n])
                    for n, axis in enumerate(kind.axes)
                }
            else:
                data[name] = _number(raw, kind.signed, kind.scale)
            i += 2 + kind.size
        return DecodeResult(data)

    def encode_downlink(self, data: Mapping[str, Any]) -> Downlink:
        out = bytearray()
        for key, value in data.items():
            kind_name, _, channel_text = key.rpartition("_")
            kind = BY_NAME.get(kind_name)
            if kind is None or kind.axes or not channel_text.isdigit() or int(channel_text) > 255:
                raise CodecError(
                    "codec_errors", f"Cayenne LPP cannot encode '{key}' (use e.g. digital_out_1)"
                )
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, int | float):
                raise CodecError("codec_errors", f"Cayenne LPP value of '{key}' must be a number")
            raw = round(value / kind.scale)
            try:
                encoded = raw.to_bytes(kind.size, "big", signed=kind.signed)
            except OverflowError:
                raise CodecError(
                    "codec_errors", f"Cayenne LPP value {value} of '{key}' is out of range"
                ) from None
            out += bytes([int(channel_text), kind.code]) + encoded
        return Downlink(self.downlink_fport, bytes(out))


def encode_uplink(fields: Mapping[str, float | int | Mapping[str, float]]) -> bytes:
    """Encode ``{"temperature_1": 21.5}`` the way a sensor would (simulator and tests)."""
    out = bytearray()
    for key, value in fields.items():
        kind_name, _, channel = key.rpartition("_")
        kind = BY_NAME[kind_name]
        out += bytes([int(channel), kind.code])
        if kind.axes:
            assert isinstance(value, Mapping)
            width = kind.size // len(kind.axes)
            scales = GPS_SCALES if kind.code == 136 else (kind.scale,) * len(kind.axes)
            for n, axis in enumerate(kind.axes):
                out += round(value[axis] / scales[n]).to_bytes(width, "big", signed=True)
        else:
            assert isinstance(value, int | float)
            out += round(value / kind.scale).to_bytes(kind.size, "big", signed=kind.signed)
    return bytes(out)
