"""Sans-IO parser for NMEA 0183 GPS sentences: GGA, RMC and VTG to position, fix and speed samples.

Checksums are mandatory; a sentence cut short by the next ``$`` is counted as truncated and
the new sentence is parsed, so a dropped byte costs one sentence, not two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from . import nmea_constants as C
from .events import BadFrame, Event, Frame, Sample
from .scanner import FrameScanner


def checksum(body: bytes) -> int:
    value = 0
    for byte in body:
        value ^= byte
    return value


def encode_sentence(body: str) -> bytes:
    """``$body*hh\\r\\n`` with the checksum computed; used by tests and peers."""
    raw = body.encode("ascii")
    return b"$" + raw + b"*" + f"{checksum(raw):02X}".encode() + b"\r\n"


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def _unit(point: str) -> str | None:
    return C.POINTS[point][0]


def _coordinate(text: str, hemisphere: str, degree_digits: int, limit: float) -> float:
    if len(text) < degree_digits + 2 or hemisphere not in ("N", "S", "E", "W"):
        raise ValueError(f"bad coordinate {text!r} {hemisphere!r}")
    degrees = int(text[:degree_digits])
    minutes = _number(text[degree_digits:])
    if not 0 <= minutes < 60:
        raise ValueError(f"bad minutes in {text!r}")
    value = degrees + minutes / 60
    if value > limit:
        raise ValueError(f"coordinate {text!r} out of range")
    return round(-value if hemisphere in ("S", "W") else value, 7)


def _position(fields: list[str], at: int) -> list[Sample]:
    lat, ns, lon, ew = fields[at : at + 4]
    if not lat or not lon:
        return []
    return [
        Sample("latitude", _coordinate(lat, ns, 2, 90), _unit("latitude")),
        Sample("longitude", _coordinate(lon, ew, 3, 180), _unit("longitude")),
    ]


def _gga(fields: list[str]) -> list[Sample]:
    quality = int(fields[6] or 0)
    out = [Sample("fix_quality", quality)]
    if fields[7]:
        out.append(Sample("satellites", int(fields[7])))
    if quality > 0:
        out += _position(fields, 2)
        if fields[8]:
            out.append(Sample("hdop", _number(fields[8])))
        if fields[9]:
            out.append(Sample("altitude", _number(fields[9]), _unit("altitude")))
    return out


def _rmc(fields: list[str]) -> list[Sample]:
    valid = fields[2] == C.RMC_VALID
    out = [Sample("fix_valid", valid)]
    if valid:
        out += _position(fields, 3)
        if fields[7]:
            out.append(Sample("speed", round(_number(fields[7]) * C.KNOTS_TO_M_S, 3), _unit("speed")))
        if fields[8]:
            out.append(Sample("course", _number(fields[8]), _unit("course")))
    return out


def _vtg(fields: list[str]) -> list[Sample]:
    out = []
    if fields[1]:
        out.append(Sample("course", _number(fields[1]), _unit("course")))
    if fields[7]:
        out.append(Sample("speed", round(_number(fields[7]) * C.KMH_TO_M_S, 3), _unit("speed")))
    elif fields[5]:
        out.append(Sample("speed", round(_number(fields[5]) * C.KNOTS_TO_M_S, 3), _unit("speed")))
    return out


_DECODERS: dict[str, tuple[int, Callable[[list[str]], list[Sample]]]] = {
    "GGA": (10, _gga),
    "RMC": (9, _rmc),
    "VTG": (8, _vtg),
}


class NmeaParser(FrameScanner):
    START = C.START

    def __init__(self, sentences: Iterable[str] = C.DEFAULT_SENTENCES) -> None:
        super().__init__()
        self._decoders = {name: _DECODERS[name] for name in sentences}

    def frame_at(self, buf: bytearray, pos: int) -> tuple[Event, int] | None:
        end = buf.find(C.END, pos, pos + C.MAX_SENTENCE_LENGTH + 1)
        cut = buf.find(C.START, pos + 1, end if end >= 0 else pos + C.MAX_SENTENCE_LENGTH + 1)
        if cut >= 0:
            return BadFrame("truncated", cut - pos), cut
        if end < 0:
            if len(buf) - pos > C.MAX_SENTENCE_LENGTH:
                return BadFrame("overlong", C.MAX_SENTENCE_LENGTH), pos + 1
            return None
        return self._sentence(bytes(buf[pos + 1 : end]).rstrip(b"\r")), end + 1

    def _sentence(self, line: bytes) -> Event:
        size = len(line) + 2
        body, mark, tail = line.rpartition(C.CHECKSUM_MARK)
        if not mark:
            return BadFrame("no_checksum", size)
        try:
            expected = int(tail, 16) if len(tail) == 2 else -1
        except ValueError:
            expected = -1
        if expected != checksum(body):
            return BadFrame("checksum", size)
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            return BadFrame("encoding", size)
        fields = text.split(",")
        address = fields[0]
        kind = address[2:] if not address.startswith("P") else address
        decoder = self._decoders.get(kind)
        if decoder is None:
            return Frame(kind, text=text)
        min_fields, decode = decoder
        if len(fields) < min_fields:
            return BadFrame("malformed", size, text)
        try:
            samples = decode(fields)
        except ValueError:
            return BadFrame("malformed", size, text)
        return Frame(kind, tuple(samples), text=text)
