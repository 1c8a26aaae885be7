"""Profile decoding: SenML (CBOR and JSON, base names resolved), text numbers, JSON/CBOR
paths, and hostile payloads that must give an error naming device and resource."""

from __future__ import annotations

import json
from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.coap.profile import (
    Decoded,
    Format,
    PayloadError,
    PointMap,
    ResourceDef,
    builtin_profiles,
    decode,
    encode_write,
    load_profile,
    resolve_profile,
)
from gateway.problems import Problems

NOW = 1_764_662_400.0


def res(fmt: Format, *points: PointMap, path: str = "3303/0") -> ResourceDef:
    return ResourceDef(path, fmt, points)


def test_senml_cbor_names_resolve_against_the_base_name():
    pack = cbor2.dumps([{-2: "/3303/0/", -3: NOW - 5, 0: "5700", 2: 21.5, 1: "Cel"}, {0: "5701", 3: "Cel"}])
    resource = res(
        Format.SENML,
        PointMap("temperature", record="/3303/0/5700"),
        PointMap("unit_text", kind="string", record="/3303/0/5701"),
    )
    out = decode("node-7", resource, pack, 112, NOW)
    assert out == [Decoded("temperature", 21.5, NOW - 5, "Cel"), Decoded("unit_text", "Cel", NOW - 5, None)]


def test_senml_json_relative_times_count_from_now():
    pack = json.dumps(
        [
            {"bn": "urn:dev:ow:10e2073a01080063;", "n": "temp", "v": 23.1, "t": -2},
            {"n": "hum", "v": 40, "u": "%RH"},
        ]
    ).encode()
    resource = res(
        Format.SENML,
        PointMap("t", record="urn:dev:ow:10e2073a01080063;temp"),
        PointMap("h", record="urn:dev:ow:10e2073a01080063;hum"),
    )
    out = decode("node", resource, pack, 110, NOW)
    assert out == [Decoded("t", 23.1, NOW - 2, None), Decoded("h", 40, NOW, "%RH")]


def test_a_gateway_point_answer_keeps_its_original_time_and_unit():
    # what a gateway's /points/lamp/level answers (gateway/coap/api_codec.encode_point)
    pack = cbor2.dumps([{2: 50, -2: "lamp/level", -3: 1764662400.123, -4: "%"}])
    out = decode("cab-b", res(Format.SENML, PointMap("lamp/level")), pack, 112, NOW + 100)
    assert out == [Decoded("lamp/level", 50, 1764662400.123, "%")]


def test_an_empty_pack_is_no_value_yet():
    assert decode("cab-b", res(Format.SENML, PointMap("lamp/level")), b"\x80", 112, NOW) == []


def test_several_readings_of_one_name_come_out_in_time_order():
    pack = cbor2.dumps([{-2: "x", -3: NOW, 2: 2, 6: 1}, {2: 1}])
    out = decode("d", res(Format.SENML_CBOR, PointMap("x", record="x")), pack, None, NOW)
    assert [(d.value, d.ts) for d in out] == [(1, NOW), (2, NOW + 1)]


def test_text_numbers_with_and_without_a_unit():
    point = PointMap("value", unit="Cel")
    assert decode("s", res(Format.TEXT, point), b"21.5\n", 0, NOW) == [Decoded("value", 21.5, None, "Cel")]
    assert decode("s", res(Format.TEXT, point), b"-3 degC", 0, NOW) == [Decoded("value", -3, None, "degC")]
    assert decode("s", res(Format.TEXT, PointMap("on", kind="bool")), b"true", None, NOW)[0].value is True


def test_json_and_cbor_paths():
    doc = {"probe": {"vwc": 31.5, "list": [1, {"t": 12}]}}
    points = (PointMap("m", path=("probe", "vwc")), PointMap("t", path=("probe", "list", 1, "t")))
    assert [d.value for d in decode("p", res(Format.JSON, *points), json.dumps(doc).encode(), 50, NOW)] == [
        31.5,
        12,
    ]
    assert [d.value for d in decode("p", res(Format.CBOR, *points), cbor2.dumps(doc), 60, NOW)] == [31.5, 12]


@pytest.mark.parametrize(
    ("fmt", "payload", "content_format", "reason"),
    [
        (Format.SENML, b"\xff\x00garbage", 112, "not SenML"),
        (Format.SENML, cbor2.dumps({"not": "a pack"}), 112, "array of records"),
        (Format.SENML, cbor2.dumps([{-2: 5, 2: 1}]), 112, "wrong type"),
        (Format.SENML, json.dumps([{"n": "x", "v": 1}]).encode(), 50, "Content-Format 50"),
        (Format.SENML, cbor2.dumps([{0: "other", 2: 1}]), 112, "no record named"),
        (Format.SENML, cbor2.dumps([{0: "t", 2: float("nan")}]), 112, "not a number"),
        (Format.SENML, cbor2.dumps([{0: "t", 2: 2**70}]), 112, "64-bit"),
        (Format.SENML, cbor2.dumps([{0: "t", 8: b"\x01"}]), 112, "expected a number"),
        (Format.TEXT, b"\xff\xfe", 0, "not UTF-8"),
        (Format.TEXT, b"hello", 0, "not a number"),
        (Format.TEXT, b"inf", 0, "not a number"),
        (Format.JSON, b"[" * 60_000, 50, "not JSON"),
        (Format.JSON, b'{"probe": 1}', 50, "no 'probe.vwc'"),
        (Format.JSON, b'{"probe": {"vwc": "wet"}}', 50, "expected a number"),
        (Format.CBOR, b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", 60, "not CBOR"),
        (Format.TEXT, b"1" * 70_000, 0, "larger than"),
    ],
)
def test_hostile_payloads_name_device_and_resource(fmt, payload, content_format, reason):
    point = PointMap(
        "t",
        record="t" if fmt is Format.SENML else None,
        path=("probe", "vwc") if fmt in (Format.JSON, Format.CBOR) else (),
    )
    with pytest.raises(PayloadError) as caught:
        decode("node-7", res(fmt, point, path="sensors/t"), payload, content_format, NOW)
    message = str(caught.value)
    assert "device 'node-7' resource '/sensors/t'" in message
    assert reason in message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(list(Format)), st.sampled_from([None, 0, 50, 60, 110, 112]))
def test_any_bytes_decode_or_raise_payload_error(payload, fmt, content_format):
    point = PointMap("x", path=("a",) if fmt in (Format.JSON, Format.CBOR) else ())
    try:
        out = decode("d", res(fmt, point), payload, content_format, NOW)
    except PayloadError as exc:
        assert "device 'd'" in str(exc)
    else:
        assert all(isinstance(d, Decoded) for d in out)


def test_writes_are_encoded_in_the_resource_format():
    point = PointMap("level", path=("set", "level"), record="/3311/0/5851")
    assert encode_write(res(Format.TEXT, point), point, 40.5) == (b"40.5", 0)
    assert encode_write(res(Format.TEXT, point), point, True) == (b"true", 0)
    assert encode_write(res(Format.JSON, point), point, 40) == (b'{"set": {"level": 40}}', 50)
    body, cf = encode_write(res(Format.SENML, point), point, 40)
    assert cf == 112 and cbor2.loads(body) == [{0: "/3311/0/5851", 2: 40}]


def test_builtin_profiles_load(tmp_path: Path):
    assert {"ipso_temperature", "text_sensor", "soil_moisture"} <= set(builtin_profiles())
    for name in builtin_profiles():
        path = resolve_profile(name, tmp_path)
        assert path is not None
        problems = Problems(str(path))
        assert load_profile(path, problems) is not None, problems.items


def test_profile_problems_name_the_file_and_key(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(
        '[profile]\nname = "x"\n[[resources]]\npath = "a"\nformat = "xml"\n'
        '[[resources.points]]\nname = "v"\nrecrod = "v"\n'
    )
    problems = Problems("site.toml")
    assert load_profile(path, problems) is None
    text = "\n".join(str(p) for p in problems.items)
    assert str(path) in text and "format" in text and "recrod" in text and "did you mean 'record'" in text
