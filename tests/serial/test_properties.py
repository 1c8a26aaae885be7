"""Property tests: no input makes a parser raise, chunking never changes the result, and a good
frame behind arbitrary junk is always decoded."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.serial.events import BadFrame, Frame, Junk
from drivers.serial.line import LineField, LineParser, LineRules
from drivers.serial.nmea import NmeaParser
from drivers.serial.plantower import PlantowerParser
from drivers.serial.sds011 import Sds011Parser

from .frames import gga, pms_frame, sds_frame


def line_parser() -> LineParser:
    return LineParser(
        LineRules(
            patterns=(re.compile(r"^V=(?P<v>[-\d.]+)(,S=(?P<s>\w+))?(,N=(?P<n>-?\d+))?$"),),
            fields=(
                LineField("v", "v", "float", scale=2.0),
                LineField("s", "s", "bool"),
                LineField("n", "n", "int"),
            ),
            max_length=64,
        )
    )


PARSERS = {
    "pms": PlantowerParser,
    "sds011": Sds011Parser,
    "nmea": lambda: NmeaParser(("GGA", "RMC", "VTG")),
    "line": line_parser,
}
GOOD = {"pms": pms_frame(3), "sds011": sds_frame(3), "nmea": gga(), "line": b"V=1.5,S=on,N=-4\r\n"}
#: the byte that may start a frame in each protocol; junk without it cannot swallow a good frame
STARTS = {"pms": 0x42, "sds011": 0xAA, "nmea": ord("$"), "line": ord("\n")}

chunks = st.lists(st.binary(max_size=80), max_size=12)


def _events(name: str, pieces: list[bytes]):
    parser = PARSERS[name]()
    out = []
    for piece in pieces:
        out += parser.feed(piece)
    return out


def _summary(events):
    return (
        [(e.kind, e.samples) for e in events if isinstance(e, Frame)],
        [e.reason for e in events if isinstance(e, BadFrame)],
    )


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(PARSERS)), pieces=chunks)
def test_arbitrary_bytes_never_raise(name, pieces):
    for event in _events(name, pieces):
        assert isinstance(event, Frame | BadFrame | Junk)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(PARSERS)), data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 400))
)
def test_how_the_bytes_are_split_does_not_matter(name, data, cuts):
    data = data + GOOD[name] + data + GOOD[name]
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert _summary(_events(name, pieces)) == _summary(_events(name, [data]))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(PARSERS)), junk=st.binary(max_size=120))
def test_a_good_frame_after_junk_is_decoded(name, junk):
    junk = bytes(b for b in junk if b != STARTS[name])
    if name == "line":
        junk += b"\n"  # a line protocol resynchronises on the terminator
    events = _events(name, [junk, GOOD[name]])
    decoded = [e for e in events if isinstance(e, Frame) and e.samples]
    assert len(decoded) == 1
