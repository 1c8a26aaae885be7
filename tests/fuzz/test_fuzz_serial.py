"""Hostile serial lines: damaged frames and lines for every serial parser, fed in random chunks.
A parser returns events (bad ones carry their reason, which the driver counts in health);
it never raises."""

from __future__ import annotations

import random
import re

from hypothesis import given
from hypothesis import strategies as st

from drivers.serial import nmea, plantower, sds011
from drivers.serial import sds011_constants as SC
from drivers.serial.events import BadFrame, Event, Frame, Junk
from drivers.serial.line import LineField, LineParser, LineRules

from .mutate import FUZZ, HOSTILE_BYTES, _mutate_bytes


def _line_parser() -> LineParser:
    return LineParser(
        LineRules(
            patterns=(
                re.compile(
                    r"^T=(?P<t>\S+) H=(?P<h>\S+)(?: N=(?P<n>\S+))?(?: S=(?P<s>\S+))?(?: M=(?P<m>.*))?$"
                ),
                re.compile(r"^COUNT (?P<c>\S+)$"),
            ),
            fields=(
                LineField("temperature", "t", "float", scale=0.1, offset=-40.0, unit="Cel"),
                LineField("humidity", "h", "float"),
                LineField("count", "n", "int", scale=0.5),
                LineField("pulses", "c", "int"),
                LineField("door", "s", "bool"),
                LineField("message", "m", "string"),
            ),
            ignore=(re.compile(r"^#"),),
            max_length=1000,
        )
    )


def _utf8_line_parser() -> LineParser:
    return LineParser(
        LineRules(
            patterns=(re.compile(r"^(?P<v>[-+0-9.eE]+);(?P<b>\w+)$"),),
            fields=(LineField("v", "v", "int", scale=10.0, offset=0.5), LineField("b", "b", "bool")),
            terminator=b"\r",
            encoding="utf-8",
            max_length=400,
        )
    )


PARSERS = {
    "line": _line_parser,
    "line-utf8": _utf8_line_parser,
    "nmea": lambda: nmea.NmeaParser(("GGA", "RMC", "VTG")),
    "pms": plantower.PlantowerParser,
    "sds011": sds011.Sds011Parser,
}
NMEA_BODIES = [
    "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
    "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W",
    "GPVTG,054.7,T,034.4,M,005.5,N,010.2,K",
    "GNGGA,000000,,,,,0,00,,,M,,M,,",
]
SEEDS = {
    "line": [b"T=615 H=40.5 N=12 S=on M=all good\n", b"COUNT 17\r\n", b"# boot\n", b"T=1 H=2\n"],
    "line-utf8": [b"12;true\r", b"3.5;off\r"],
    "nmea": [nmea.encode_sentence(body) for body in NMEA_BODIES],
    "pms": [
        plantower.encode_data_frame(
            [i + 100, i + 200, i + 300, i + 50, i, i + 10, 1000 + i, 500 + i, 100 + i, 10 + i, 5, 1]
        )
        for i in (0, 3)
    ]
    + [plantower.command(0xE1, 1)],
    "sds011": [sds011.encode_data_frame(1.5, 12.5), sds011.encode_sensor_frame(SC.REPLY_COMMAND, bytes(6))],
}
HOSTILE = HOSTILE_BYTES + (
    b"1e999",
    b"nan",
    b"inf",
    b"9" * 400,
    b"1e308",
    b"1" + b"0" * 308,
    b"\xc3\x28",
    b"*",
    b",",
    b"$GP",
    b"\x42\x4d",
    b"\xaa\xc0",
    b"\xab",
)
NAMES = sorted(PARSERS)


def _fixed(name: str, data: bytes, rng: random.Random) -> bytes:
    """Mutations with the check code made right again, so they pass the checksum and reach decoding."""
    if name == "nmea":
        body = data[1:].split(b"*")[0].decode("latin-1")
        return nmea.encode_sentence(body.encode("ascii", "replace").decode("ascii"))
    if name == "pms" and len(data) >= 32:
        return plantower.encode_data_frame(
            [int.from_bytes(data[4 + 2 * i : 6 + 2 * i], "big") for i in range(13)][:13]
        )
    if name == "sds011" and len(data) >= 8:
        return sds011.encode_sensor_frame(rng.choice((0xC0, SC.REPLY_COMMAND)), data[2:8].ljust(6, b"\0"))
    return data


def _stream(n: int) -> tuple[str, list[bytes]]:
    rng = random.Random(n)
    name = NAMES[n % len(NAMES)]
    stream = b""
    for _ in range(rng.randrange(1, 4)):
        seed = rng.choice(SEEDS[name])
        data = _mutate_bytes(seed, rng, rng.randrange(6), HOSTILE)
        if rng.randrange(3) == 0:
            try:
                data = _fixed(name, data, rng)
            except (ValueError, IndexError):
                pass
        stream += data if rng.randrange(8) else rng.randbytes(rng.randrange(64))
    cuts = sorted(rng.randrange(len(stream) + 1) for _ in range(rng.randrange(4)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    return name, pieces


@FUZZ
@given(st.integers(0, 2**64 - 1).map(_stream))
def test_fuzz_serial_parsers_return_events_never_raise(case: tuple[str, list[bytes]]) -> None:
    name, pieces = case
    parser = PARSERS[name]()
    events: list[Event] = []
    for piece in pieces:
        events += parser.feed(piece)
    for event in events:
        assert isinstance(event, Frame | BadFrame | Junk)
        if isinstance(event, BadFrame):
            assert event.reason  # the driver counts bad frames by this reason in health


def test_int_field_with_a_scale_and_a_huge_value_is_a_bad_value() -> None:
    """A 400-digit count times a scale once raised OverflowError out of the line parser."""
    events = _line_parser().feed(b"T=615 H=40.5 N=" + b"9" * 400 + b"\n")
    events += _utf8_line_parser().feed(b"1" + b"0" * 308 + b";on\r")  # 1e308 * 10 is no float
    assert [(e.reason if isinstance(e, BadFrame) else e) for e in events] == ["bad_value"] * 2
