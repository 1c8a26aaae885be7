"""Sans-IO parser behaviour: decoding, resynchronisation and exact command frames per datasheet."""

from __future__ import annotations

import re

import pytest

from drivers.serial import plantower, sds011
from drivers.serial.events import BadFrame, Frame, Junk
from drivers.serial.line import LineField, LineParser, LineRules
from drivers.serial.nmea import NmeaParser, encode_sentence

from .frames import JUNK, corrupt, gga, pms_frame, rmc, sds_frame


def frames(events):
    return [e for e in events if isinstance(e, Frame)]


def bad(events):
    return [e.reason for e in events if isinstance(e, BadFrame)]


def feed_bytewise(parser, data: bytes):
    out = []
    for i in range(len(data)):
        out += parser.feed(data[i : i + 1])
    return out


# -- Plantower ------------------------------------------------------------------------------
def test_pms_frame_decodes_every_field():
    (frame,) = plantower.PlantowerParser().feed(pms_frame(7))
    values = {s.name: s.value for s in frame.samples}
    assert values["pm2_5"] == 7 and values["pm10"] == 17 and values["pm1_0"] == 57
    assert values["pm2_5_cf1"] == 207 and values["particles_0_3um"] == 1007
    assert {s.unit for s in frame.samples if s.name.startswith("pm")} == {"ug/m3"}
    assert len(frame.samples) == 12


def test_pms_frame_words_are_big_endian_and_check_code_is_the_byte_sum():
    # Words 1..13 as a PMS5003 sends them indoors; word 13 carries version 0x97, error 0.
    body = bytes.fromhex("424d001c000b000e000f000b000e000f07ad021d003c0004000000009700")
    raw = body + sum(body).to_bytes(2, "big")
    assert raw[-2:] == bytes.fromhex("02a5")
    (frame,) = frames(plantower.PlantowerParser().feed(raw))
    values = {s.name: s.value for s in frame.samples}
    assert (values["pm1_0"], values["pm2_5"], values["pm10"]) == (11, 14, 15)
    assert values["particles_0_3um"] == 0x07AD


def test_pms_resynchronises_after_junk_partial_and_corrupt_frames():
    stream = (
        JUNK
        + pms_frame(1)
        + pms_frame(2)[:17]
        + pms_frame(3)
        + corrupt(pms_frame(4))
        + pms_frame(5)
        + b"\x42"
        + pms_frame(6)
    )
    for events in (
        plantower.PlantowerParser().feed(stream),
        feed_bytewise(plantower.PlantowerParser(), stream),
    ):
        got = [dict((s.name, s.value) for s in f.samples)["pm2_5"] for f in frames(events)]
        assert got == [1, 3, 5, 6]
        assert bad(events) == ["checksum", "checksum"]
        assert sum(e.size for e in events if isinstance(e, Junk)) > len(JUNK)


def test_pms_bad_length_costs_one_candidate_only():
    broken = b"\x42\x4d\x00\x99" + b"\x00" * 10
    events = plantower.PlantowerParser().feed(broken + pms_frame(9))
    assert bad(events) == ["length"]
    assert len(frames(events)) == 1


def test_pms_command_frames_match_the_datasheet():
    assert plantower.command(0xE1, 0).hex() == "424de100000170"  # passive mode
    assert plantower.command(0xE1, 1).hex() == "424de100010171"  # active mode
    assert plantower.command(0xE2).hex() == "424de200000171"  # read in passive mode
    assert plantower.command(0xE4, 0).hex() == "424de400000173"  # sleep
    assert plantower.command(0xE4, 1).hex() == "424de400010174"  # wake up


def test_pms_mode_reply_is_a_reply_frame():
    (event,) = plantower.PlantowerParser().feed(bytes.fromhex("424d0004e1000174"))
    assert event == Frame("reply", command=0xE1)


# -- SDS011 ---------------------------------------------------------------------------------
def test_sds011_data_frame_from_the_datasheet():
    # Datasheet example: PM2.5 = 0x00D4 -> 21.2, PM10 = 0x0130 -> 30.4 (little endian), id A160.
    raw = bytes.fromhex("aac0d4003001a160")
    raw += bytes((sum(raw[2:8]) & 0xFF, 0xAB))
    (frame,) = sds011.Sds011Parser().feed(raw)
    assert [(s.name, s.value) for s in frame.samples] == [("pm2_5", 21.2), ("pm10", 30.4)]


def test_sds011_command_frames_match_the_datasheet():
    # Examples printed in the control protocol document, byte for byte.
    def spaced(text: str) -> bytes:
        return bytes.fromhex(text)

    assert sds011.set_reporting_mode(query=True) == spaced(
        "AA B4 02 01 01 00 00 00 00 00 00 00 00 00 00 FF FF 02 AB"
    )
    assert sds011.set_reporting_mode(query=False) == spaced(
        "AA B4 02 01 00 00 00 00 00 00 00 00 00 00 00 FF FF 01 AB"
    )
    assert sds011.query_data() == spaced("AA B4 04 00 00 00 00 00 00 00 00 00 00 00 00 FF FF 02 AB")
    assert sds011.set_working(False) == spaced("AA B4 06 01 00 00 00 00 00 00 00 00 00 00 00 FF FF 05 AB")
    assert sds011.set_working(True) == spaced("AA B4 06 01 01 00 00 00 00 00 00 00 00 00 00 FF FF 06 AB")
    assert sds011.set_working_period(1) == spaced("AA B4 08 01 01 00 00 00 00 00 00 00 00 00 00 FF FF 08 AB")
    assert all(len(f) == 19 for f in (sds011.query_data(), sds011.set_working(True)))


def test_sds011_resynchronises():
    stream = JUNK + sds_frame(1) + sds_frame(2)[:6] + sds_frame(3) + corrupt(sds_frame(4), 3) + sds_frame(5)
    stream += sds_frame(6)[:-1] + b"\x00" + sds_frame(7)  # wrong tail byte
    for events in (sds011.Sds011Parser().feed(stream), feed_bytewise(sds011.Sds011Parser(), stream)):
        got = [f.samples[0].value for f in frames(events)]
        assert got == [1.1, 1.3, 1.5, 1.7]
        assert sorted(bad(events)) == ["checksum", "tail", "tail"]


def test_sds011_command_reply():
    reply = sds011.encode_sensor_frame(0xC5, bytes((6, 1, 0, 0)))
    (event,) = sds011.Sds011Parser().feed(reply)
    assert event == Frame("reply", command=6)


# -- NMEA -----------------------------------------------------------------------------------
def test_nmea_gga_and_rmc():
    events = NmeaParser().feed(gga() + rmc())
    gga_frame, rmc_frame = frames(events)
    values = {s.name: s.value for s in gga_frame.samples}
    assert values == {
        "fix_quality": 1,
        "satellites": 8,
        "latitude": 48.1173,
        "longitude": 11.5166667,
        "hdop": 0.9,
        "altitude": 545.4,
    }
    values = {s.name: s.value for s in rmc_frame.samples}
    assert values["fix_valid"] is True and values["speed"] == pytest.approx(22.4 * 0.514444, rel=1e-4)
    assert values["course"] == 84.4


def test_nmea_southern_western_hemispheres_and_no_fix():
    (frame,) = frames(NmeaParser().feed(gga("3351.000", "S", "15112.000", "W")))
    values = {s.name: s.value for s in frame.samples}
    assert values["latitude"] == pytest.approx(-33.85) and values["longitude"] == pytest.approx(-151.2)
    (frame,) = frames(NmeaParser().feed(encode_sentence("GPGGA,123519,,,,,0,00,,,M,,M,,")))
    assert {s.name: s.value for s in frame.samples} == {"fix_quality": 0, "satellites": 0}
    (frame,) = frames(NmeaParser().feed(rmc(status="V")))
    assert [(s.name, s.value) for s in frame.samples] == [("fix_valid", False)]


def test_nmea_damage_is_counted_and_the_next_sentence_survives():
    broken = bytearray(gga())
    broken[10] ^= 0x01
    stream = (
        b"noise"
        + gga()[:20]
        + rmc()
        + bytes(broken)
        + b"$GPGGA,no checksum\r\n"
        + encode_sentence("GPGGA,1,99x9.0,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")
        + gga()
    )
    for events in (NmeaParser().feed(stream), feed_bytewise(NmeaParser(), stream)):
        assert [f.kind for f in frames(events)] == ["RMC", "GGA"]
        assert bad(events) == ["truncated", "checksum", "no_checksum", "malformed"]


def test_nmea_unselected_and_proprietary_sentences_are_ignored_not_bad():
    events = NmeaParser(("GGA",)).feed(rmc() + encode_sentence("PUBX,00,foo") + gga())
    assert [(f.kind, bool(f.samples)) for f in frames(events)] == [
        ("RMC", False),
        ("PUBX", False),
        ("GGA", True),
    ]
    assert bad(events) == []


def test_nmea_overlong_garbage_is_dropped():
    events = NmeaParser().feed(b"$" + b"A" * 300 + b"\r\n" + gga())
    assert bad(events) == ["overlong"]
    assert len(frames(events)) == 1


# -- generic lines --------------------------------------------------------------------------
def counter_rules(**kwargs) -> LineRules:
    return LineRules(
        patterns=(re.compile(r"^C,(?P<cars_in>\d+),(?P<cars_out>\d+)(,T=(?P<temp>-?\d+))?$"),),
        fields=(
            LineField("in", "cars_in", "int"),
            LineField("out", "cars_out", "int"),
            LineField("temperature", "temp", "float", scale=0.1, unit="Cel"),
        ),
        ignore=(re.compile(r"^#"),),
        **kwargs,
    )


def test_line_named_groups_become_typed_samples():
    events = LineParser(counter_rules()).feed(b"C,12,3,T=215\r\nC,13,3\r\n# boot banner\r\n")
    first, second, ignored = frames(events)
    assert [(s.name, s.value, s.unit) for s in first.samples] == [
        ("in", 12, None),
        ("out", 3, None),
        ("temperature", pytest.approx(21.5), "Cel"),
    ]
    assert [s.name for s in second.samples] == ["in", "out"]  # optional group absent
    assert ignored.kind == "ignored" and not ignored.samples


def test_line_errors_are_counted_with_their_text():
    parser = LineParser(counter_rules(max_length=32))
    events = parser.feed(b"garbage\r\nC,\xff\xfe,1\r\n" + b"X" * 80 + b"\nC,1,2\n")
    assert bad(events) == ["no_match", "encoding", "overlong"]
    assert [e.text for e in events if isinstance(e, BadFrame)][0] == "garbage"
    assert frames(events)[-1].samples[0].value == 1


def test_line_bool_and_custom_terminator():
    rules = LineRules(
        patterns=(re.compile(r"DOOR=(?P<door>\w+)"),),
        fields=(LineField("door_closed", "door", "bool"),),
        terminator=b";",
    )
    events = LineParser(rules).feed(b"DOOR=closed;DOOR=open;DOOR=ajar;")
    assert [f.samples[0].value for f in frames(events)] == [True, False]
    assert bad(events) == ["bad_value"]
