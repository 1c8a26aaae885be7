"""SenML encoding without sockets: labels, base fields, compactness that loses nothing."""

from __future__ import annotations

import json
import math
import struct

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.coap.senml import (
    BatchId,
    Dropped,
    SenmlError,
    decode_senml_cbor,
    decode_senml_json,
    encode_senml_cbor,
    encode_senml_json,
)
from gateway.model import Reading

T0 = 1_767_225_600.0


def sample() -> list[Reading]:
    return [
        Reading("meter/voltage", 230.1, T0 + 0.123, "V"),
        Reading("door/open", True, T0 + 0.123),
        Reading("meter/voltage", 229.8, T0 + 10.125, "V"),
        Reading("display/text", "FULL", T0 + 11.0),
        Reading("meter/energy", 12345.67, T0 + 12.0, "kWh"),
        Reading("park/free", 17, T0 + 12.0),
    ]


def test_cbor_uses_rfc8428_integer_labels_and_base_fields():
    records = cbor2.loads(encode_senml_cbor(sample(), base_name="gw1/", batch=BatchId("gw1", 7)))
    head = records[0]
    assert head[-3] == pytest.approx(T0 + 0.123)  # bt
    assert head["gw"] == "gw1" and head["batch"] == 7
    names = [r[-2] for r in records if -2 in r]  # bn once per point
    assert sorted(names) == [
        "gw1/display/text",
        "gw1/door/open",
        "gw1/meter/energy",
        "gw1/meter/voltage",
        "gw1/park/free",
    ]
    assert all(0 not in r for r in records)  # no per-record names at all
    assert {k for r in records for k in r if isinstance(k, int)} <= {-4, -3, -2, 2, 3, 4, 6}


def test_round_trip_keeps_every_reading_with_ms_time_and_decimal_value():
    readings = sample()
    for payload, decode in (
        (encode_senml_cbor(readings, base_name="gw1/"), decode_senml_cbor),
        (encode_senml_json(readings, base_name="gw1/"), decode_senml_json),
    ):
        records = decode(payload, time_digits=3).records
        got = sorted((r.name, r.time) for r in records)
        assert got == sorted((f"gw1/{r.point}", round(r.ts, 3)) for r in readings)
        by_key = {(r.name, r.time): r for r in records}
        for reading in readings:
            record = by_key[(f"gw1/{reading.point}", round(reading.ts, 3))]
            assert record.unit == reading.unit
            if isinstance(reading.value, float):
                digits = len(repr(reading.value).replace(".", "").lstrip("0"))
                assert float(f"{record.value:.{digits}g}") == reading.value
            else:
                assert record.value == reading.value and type(record.value) is type(reading.value)


def test_points_keep_their_order_and_units_do_not_leak():
    readings = [Reading("a/x", float(i), T0 + i, "C" if i % 2 else None) for i in range(4)]
    readings = [Reading("a/t", float(i), T0 + i, "C") for i in range(3)] + [Reading("a/n", 1, T0 + 5)]
    records = decode_senml_cbor(encode_senml_cbor(readings)).records
    assert [r.name for r in records] == ["a/n", "a/t", "a/t", "a/t"]
    assert records[0].unit is None
    assert [r.value for r in records[1:]] == [0, 1, 2]


def plain_cbor_records(payload: bytes) -> list[tuple[str, object, float]]:
    """Resolve a SenML+CBOR pack with nothing but cbor2 and RFC 8428 §4.6 (bn + n, bt + t)."""
    out, base_name, base_time = [], "", 0.0
    for record in cbor2.loads(payload):
        base_name = record.get(-2, base_name)
        base_time = record.get(-3, base_time)
        value = next((record[k] for k in (2, 3, 4) if k in record), None)
        if value is not None:
            out.append((base_name + record.get(0, ""), value, base_time + record.get(6, 0)))
    return out


def same_double(a: object, b: float) -> bool:
    """Bit-identical as IEEE doubles (so -0.0 is not 0.0), for ints that stand for a float too."""
    return isinstance(a, int | float) and struct.pack("<d", float(a)) == struct.pack("<d", b)


def test_default_is_exact_for_any_cbor_decoder():
    # The values of the issue: float32 turned them into 86.125-ish and 0.949999988.
    readings = [
        Reading("a/x", 86.1, T0 + 0.123, "C"),
        Reading("a/x", 0.95, T0 + 9.667, "C"),
        Reading("a/x", 230.1, T0 + 70.001, "C"),
        Reading("a/y", -0.0, T0 + 3601.999),
    ]
    records = plain_cbor_records(encode_senml_cbor(readings))
    by_name = sorted(records, key=lambda r: r[2])
    for reading, (_, value, ts) in zip(readings, by_name, strict=True):
        assert same_double(value, reading.value)
        assert ts == reading.ts  # bt + t, one double addition, no rounding
    assert [r[1] for r in by_name] == [86.1, 0.95, 230.1, -0.0]


def test_floats_go_in_the_shortest_exact_width():
    def value_bytes(value: float) -> bytes:
        return cbor2.dumps(cbor2.loads(encode_senml_cbor([Reading("a/x", value, T0)]))[0][2], canonical=True)

    assert value_bytes(1.5).hex() == "f93e00"  # float16
    assert value_bytes(21.296875).hex() == "f94d53"  # float16
    assert value_bytes(0.1000000014901161193847656).hex()[:2] == "fa"  # float32 exactly
    assert value_bytes(86.1).hex() == "fb4055866666666666"  # needs the full double
    assert value_bytes(21.0) == b"\x15"  # integral: the same number as int
    assert encode_senml_cbor([Reading("a/x", 86.1, T0)]) != encode_senml_cbor(
        [Reading("a/x", 86.1, T0)], compact_floats=True
    )


def test_compact_floats_is_lossy_and_opt_in():
    readings = [Reading("a/x", 21.3, T0)]
    exact = decode_senml_cbor(encode_senml_cbor(readings)).records[0]
    compact = decode_senml_cbor(encode_senml_cbor(readings, compact_floats=True)).records[0]
    assert exact.value == 21.3
    assert compact.value != 21.3 and float(f"{compact.value:.3g}") == 21.3
    assert len(encode_senml_cbor(readings, compact_floats=True)) < len(encode_senml_cbor(readings))


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(st.lists(st.tuples(st.sampled_from(["a/x", "a/y", "b/z"]), finite, finite), min_size=1, max_size=30))
def test_any_finite_doubles_arrive_exactly_in_cbor_and_json(items):
    """Any finite value and any finite timestamp, through plain cbor2 / json: bit-identical."""
    readings = [Reading(p, v, ts, "C" if p == "b/z" else None) for p, v, ts in items]
    cbor_records = plain_cbor_records(encode_senml_cbor(readings, batch=BatchId("g", 1)))
    json_records = decode_senml_json(encode_senml_json(readings)).records
    for point in {r.point for r in readings}:
        mine = [r for r in readings if r.point == point]
        theirs = [r for r in cbor_records if r[0] == point]
        assert len(theirs) == len(mine)
        for reading, (_, value, ts) in zip(mine, theirs, strict=True):
            # times by value: RFC 8428 adds an absent t as 0, and -0.0 + 0 is 0.0
            assert same_double(value, reading.value) and ts == reading.ts
        from_json = [r for r in json_records if r.name == point]
        for reading, record in zip(mine, from_json, strict=True):
            assert same_double(record.value, reading.value) and record.time == reading.ts


@given(
    st.lists(st.tuples(finite, st.integers(1_000_000_000_000, 4_000_000_000_000)), min_size=1, max_size=30)
)
def test_buffer_timestamps_in_ms_come_back_exactly(items):
    """What the buffer holds: whole milliseconds, read back as ms / 1000."""
    readings = [Reading("a/x", v, ms / 1000.0) for v, ms in items]
    records = plain_cbor_records(encode_senml_cbor(readings))
    assert [ts for _, _, ts in records] == [r.ts for r in readings]
    assert [struct.pack("<d", float(v)) for _, v, _ in records] == [
        struct.pack("<d", r.value) for r in readings
    ]


def test_drop_announcement_rides_in_the_first_record():
    payload = encode_senml_cbor([], batch=BatchId("g", 5), dropped=Dropped(250, 101, 350))
    assert cbor2.loads(payload) == [
        {"gw": "g", "batch": 5, "dropped": 250, "dropped_first": 101, "dropped_last": 350}
    ]
    pack = decode_senml_cbor(payload)
    assert pack.dropped == Dropped(250, 101, 350) and pack.records == ()
    with_readings = encode_senml_json(sample(), batch=BatchId("g", 6), dropped=Dropped(1, 7, 7))
    assert json.loads(with_readings)[0]["dropped"] == 1
    assert decode_senml_json(with_readings).dropped == Dropped(1, 7, 7)
    assert decode_senml_json(encode_senml_json(sample())).dropped is None


def test_json_is_plain_senml_json():
    payload = encode_senml_json(sample()[:2], base_name="gw1/", batch=BatchId("gw1", 3))
    records = json.loads(payload)
    assert records[0]["bn"] == "gw1/door/open" and records[0]["vb"] is True
    assert records[0]["gw"] == "gw1" and records[0]["batch"] == 3
    assert decode_senml_json(payload).batch == BatchId("gw1", 3)


def test_non_finite_values_survive_json_as_text():
    payload = encode_senml_json([Reading("a/x", math.nan, T0), Reading("a/y", math.inf, T0)])
    assert [r.value for r in decode_senml_json(payload).records] == ["nan", "inf"]
    cbor_records = decode_senml_cbor(encode_senml_cbor([Reading("a/y", math.inf, T0)])).records
    assert cbor_records[0].value == math.inf


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\xff\x00", "not CBOR"),
        (cbor2.dumps({"a": 1}), "array of records"),
        (cbor2.dumps([{2: 1.0}]), "no name"),
        (cbor2.dumps([{-2: "x", 2: "text"}]), "wrong type"),
        (cbor2.dumps([{-2: "x", 2: 1, "ext_": 1}]), "must-understand"),
    ],
)
def test_malformed_packs_are_named(payload, message):
    with pytest.raises(SenmlError, match=message):
        decode_senml_cbor(payload)


def test_empty_batch_is_a_valid_pack():
    assert decode_senml_cbor(encode_senml_cbor([], batch=BatchId("g", 1))).batch == BatchId("g", 1)
    assert decode_senml_cbor(encode_senml_cbor([])).records == ()


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a/x", "a/y", "b/z"]),
            st.one_of(
                st.booleans(),
                st.integers(-(2**40), 2**40),
                st.text(max_size=5),
                st.floats(allow_nan=False, allow_infinity=False, width=64),
            ),
            st.integers(0, 10**7),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_any_batch_round_trips(items):
    readings = [Reading(p, v, T0 + ms / 1000) for p, v, ms in items]
    records = decode_senml_cbor(encode_senml_cbor(readings), time_digits=3).records
    assert len(records) == len(readings)
    for point in {r.point for r in readings}:
        mine = [r for r in readings if r.point == point]
        theirs = [r for r in records if r.name == point]
        assert [round(r.ts, 3) for r in mine] == [r.time for r in theirs]
        for reading, record in zip(mine, theirs, strict=True):
            if isinstance(reading.value, float):
                digits = len(repr(reading.value))
                assert float(f"{record.value:.{digits}g}") == pytest.approx(reading.value, rel=1e-15)
            else:
                assert record.value == reading.value


def test_half_floats_only_where_three_digits_survive():
    readings = [Reading("a/t", 21.3, T0), Reading("a/e", 1234.56, T0)]
    plain = cbor2.loads(encode_senml_cbor(readings, compact_floats=True))
    half = cbor2.loads(encode_senml_cbor(readings, compact_floats=True, half_floats=True))
    assert len(encode_senml_cbor(readings, compact_floats=True, half_floats=True)) < len(
        encode_senml_cbor(readings, compact_floats=True)
    )
    assert half[0][2] == 21.296875 and plain[0][2] != 21.296875  # float16 for 21.3
    assert float(f"{half[1][2]:.6g}") == 1234.56  # 1234.56 needs float32
    assert half[1][2] != 1234.0 and half[1][2] == plain[1][2]
