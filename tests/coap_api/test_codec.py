"""The API's wire formats without sockets: queries, cursors in SenML, write bodies."""

import json

import cbor2
import pytest

from gateway.coap import api_codec as codec
from gateway.coap.senml import decode_senml_cbor, decode_senml_json
from gateway.model import Quality, StoredReading


def stored(n: int, start: int = 1) -> list[StoredReading]:
    return [
        StoredReading(seq, f"dev/p{seq % 3}", float(seq) / 10, 1_700_000_000 + seq, "W", Quality.GOOD, True)
        for seq in range(start, start + n)
    ]


def test_query_defaults_limits_and_points():
    q = codec.parse_readings_query(["after=42", "limit=5000", "point=a/b", "point=c/d"], 100, 1000)
    assert q == codec.ReadingsQuery(42, 1000, ("a/b", "c/d"))
    assert codec.parse_readings_query([], 100, 1000) == codec.ReadingsQuery(0, 100, None)


@pytest.mark.parametrize(
    "query, message",
    [
        (["after=-1"], "after must be a whole number"),
        (["limit=0"], "limit must be at least 1"),
        (["point=nodevice"], "not a device/point name"),
        (["since=3"], "unknown query 'since'"),
        (["after"], "needs a value"),
    ],
)
def test_bad_queries_say_what_is_wrong(query, message):
    with pytest.raises(codec.RequestError, match=message):
        codec.parse_readings_query(query, 100, 1000)


@pytest.mark.parametrize("count", [1, 23, 24, 300])  # array headers of 1, 2 and 3 bytes
def test_senml_cbor_page_carries_cursor_and_stays_valid_senml(count):
    readings = stored(count, start=10)
    query = codec.ReadingsQuery(9, count)
    payload = codec.encode_page(readings, query, 112)
    records = cbor2.loads(payload)
    assert records[0]["next"] == readings[-1].seq and records[0]["more"] is True
    pack = decode_senml_cbor(payload)
    # exact: the doubles of the buffer, not float32 approximations of them
    assert sorted((r.name, r.value, r.time) for r in pack.records) == sorted(
        (r.point, r.value, r.ts) for r in readings
    )


def buffer_like(values: list[float]) -> list[StoredReading]:
    """Readings as the buffer returns them: timestamps in whole ms, read back as ms / 1000."""
    return [
        StoredReading(
            seq, f"dev/p{seq % 2}", value, (1_767_225_600_000 + seq * 9_667) / 1000.0, "W", Quality.GOOD, True
        )
        for seq, value in enumerate(values, start=1)
    ]


def plain_resolve(payload: bytes) -> list[tuple[str, object, float]]:
    """Only cbor2 and RFC 8428 §4.6: bn + n, bt + t."""
    out, name, base = [], "", 0.0
    for record in cbor2.loads(payload):
        name, base = record.get(-2, name), record.get(-3, base)
        out.append((name, record[2], base + record.get(6, 0)))
    return out


def test_senml_cbor_answers_are_exact_for_a_plain_cbor_decoder():
    readings = buffer_like([86.1, 0.95, 230.1, 21.3, 1e-300, 12345.67])
    page = plain_resolve(codec.encode_page(readings, codec.ReadingsQuery(0, 100), 112))
    assert sorted(page) == sorted((r.point, r.value, r.ts) for r in readings)
    for reading in readings:
        assert plain_resolve(codec.encode_point(reading, 112)) == [(reading.point, reading.value, reading.ts)]


def test_senml_json_page_and_partial_page():
    readings = stored(3)
    payload = codec.encode_page(readings, codec.ReadingsQuery(0, 10), 110)
    first = json.loads(payload)[0]
    assert first["next"] == 3 and first["more"] is False
    assert len(decode_senml_json(payload).records) == 3


@pytest.mark.parametrize("fmt", [112, 110])
def test_empty_page_is_an_empty_pack(fmt):
    payload = codec.encode_page([], codec.ReadingsQuery(7, 10), fmt)
    assert (cbor2.loads(payload) if fmt == 112 else json.loads(payload)) == []


@pytest.mark.parametrize("fmt, load", [(50, json.loads), (60, cbor2.loads)])
def test_plain_page_lists_every_field(fmt, load):
    doc = load(codec.encode_page(stored(2), codec.ReadingsQuery(0, 2), fmt))
    assert doc["next"] == 2 and doc["more"] is True
    assert doc["readings"][0] == {
        "seq": 1,
        "point": "dev/p1",
        "value": 0.1,
        "ts": 1_700_000_001,
        "unit": "W",
        "quality": "good",
        "clock_synced": True,
    }


def test_negotiation_defaults_and_refuses_unknown_formats():
    assert codec.negotiate(None, codec.READINGS_FORMATS) == 112
    assert codec.negotiate(50, codec.READINGS_FORMATS) == 50
    with pytest.raises(codec.NotAcceptable):
        codec.negotiate(0, codec.READINGS_FORMATS)


@pytest.mark.parametrize(
    "payload, fmt, kind, expected",
    [
        (b"30", 0, "number", 30),
        (b"21.5", None, "number", 21.5),
        (b"true", 0, "bool", True),
        (b"on", 0, "bool", True),
        (b"FULL", 0, "string", "FULL"),
        (b'{"value": 12}', 50, "number", 12),
        (cbor2.dumps(False), 60, "bool", False),
    ],
)
def test_write_values_by_kind(payload, fmt, kind, expected):
    assert codec.value_for_point(codec.decode_body(payload, fmt), kind, "d/p") == expected


@pytest.mark.parametrize(
    "payload, fmt, kind",
    [
        (b"hello", 0, "number"),
        (b"3", 0, "bool"),
        (b"true", 0, "number"),
        (b"{bad", 50, "number"),
    ],
)
def test_wrong_write_values_are_refused(payload, fmt, kind):
    with pytest.raises(codec.RequestError):
        codec.value_for_point(codec.decode_body(payload, fmt), kind, "d/p")


def test_write_in_unsupported_format():
    with pytest.raises(codec.UnsupportedFormat):
        codec.decode_body(b"x", 112)


def test_override_body():
    assert codec.override_from_body({"value": 40, "duration": "15m"}, "number", "d/p") == (40, 900.0)
    for body in ({"value": 40}, {"value": 40, "duration": -1}, {"value": 1, "duration": 5, "x": 1}):
        with pytest.raises(codec.RequestError):
            codec.override_from_body(body, "number", "d/p")


@pytest.mark.parametrize(
    "fmt, expected", [(112, b"\x80"), (110, b"[]"), (50, b"null"), (60, b"\xf6"), (0, b"")]
)
def test_a_point_without_reading_yet_answers_empty(fmt, expected):
    assert codec.encode_point(None, fmt) == expected


def test_point_text_format():
    r = StoredReading(1, "lamp/on", True, 1.0, None, Quality.GOOD, True)
    assert codec.encode_point(r, 0) == b"true"
    r = StoredReading(1, "lamp/level", 21.5, 1.0, "%", Quality.GOOD, True)
    assert codec.encode_point(r, 0) == b"21.5 %"


@pytest.mark.parametrize(
    "value, text",
    [(12345.67, b"12345.67"), (0.1234567, b"0.1234567"), (40.0, b"40"), (-0.0, b"-0.0"), (1e-300, b"1e-300")],
)
def test_point_text_is_exact_too(value, text):
    r = StoredReading(1, "meter/energy", value, 1.0, None, Quality.GOOD, True)
    assert codec.encode_point(r, 0) == text
    assert float(text) == value
