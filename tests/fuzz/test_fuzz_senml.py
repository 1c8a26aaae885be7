"""Hostile SenML packs, JSON and CBOR: every input resolves to records or raises SenmlError."""

from __future__ import annotations

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from gateway.coap.senml import (
    BatchId,
    SenmlError,
    decode_senml_cbor,
    decode_senml_json,
    encode_senml_cbor,
    encode_senml_json,
)
from gateway.model import Reading

from .mutate import FUZZ, fuzz_bytes

READINGS = [
    Reading("lamp-1/level", 86.1, 1_764_633_600.25, "%"),
    Reading("lamp-1/power", True, 1_764_633_601.0),
    Reading("air-1/pm2_5", 12, 1_764_633_602.5, "ug/m3"),
    Reading("meter/state", "ok", 1_764_633_603.0),
]
JSON_SEEDS = [
    encode_senml_json(READINGS),
    encode_senml_json(READINGS[:1], batch=BatchId("site-1", 52)),
    b'[{"bn":"lamp-1/","bt":1.7e9,"bu":"%","bv":10,"n":"level","v":1.5,"t":-5},{"n":"x","vs":"a","ut":60},'
    b'{"n":"y","vb":false,"t":268435455},{"n":"z","vd":"AQI","s":3}]',
]
CBOR_SEEDS = [
    encode_senml_cbor(READINGS),
    encode_senml_cbor(READINGS[2:], batch=BatchId("site-1", 7)),
    cbor2.dumps(
        [
            {-2: "lamp-1/", -3: 1.7e9, -4: "%", -5: 10, 0: "level", 2: 1.5, 6: -5},
            {0: "x", 3: "a"},
            {0: "y", 4: False, 6: 2**28 - 1},
            {0: "z", 8: b"\x01\x02", 5: 3},
        ]
    ),
]
HOSTILE = (
    b"1e999",
    b"-1e999",
    b"NaN",
    b"Infinity",
    b"9" * 400,
    b"9" * 5000,
    b"[" * 3000,
    b"{}",
    b"[]",
    b"null",
    b"\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00",
    b"\xc2\x58\x40" + b"\xff" * 64,
    b"\x81" * 600,
    b"\x1b" + b"\xff" * 8,
    b"\x3b" + b"\xff" * 8,
    b"\xf9\x7e\x00",
    b'"bt":',
    b'"v":',
    b'"n":',
    b'"_x_":1,',
    b"\xa0",
    b"\x80",
)


@FUZZ
@given(
    st.one_of(
        fuzz_bytes(JSON_SEEDS, HOSTILE).map(lambda b: ("json", b)),
        fuzz_bytes(CBOR_SEEDS, HOSTILE).map(lambda b: ("cbor", b)),
    )
)
def test_fuzz_senml_pack_resolves_or_raises_senml_error(case: tuple[str, bytes]) -> None:
    kind, payload = case
    decode = decode_senml_json if kind == "json" else decode_senml_cbor
    try:
        pack = decode(payload, time_digits=3)
    except SenmlError:
        return
    for record in pack.records:
        assert isinstance(record.name, str) and record.name


def test_an_overflowing_base_time_or_nesting_is_a_senml_error() -> None:
    """A 400-digit base time once raised OverflowError, deep nesting RecursionError."""
    for payload in (
        b'[{"bt":' + b"9" * 400 + b',"n":"a","v":1}]',
        b'[{"n":"a","v":' + b"9" * 400 + b',"bv":0.5}]',
        b"[" * 100_000,
    ):
        try:
            decode_senml_json(payload)
        except SenmlError:
            continue
        raise AssertionError(f"{payload[:20]!r} was accepted")
    try:
        decode_senml_cbor(cbor2.dumps([{-3: 10**400, 0: "a", 2: 1}]))
    except SenmlError:
        pass
    else:
        raise AssertionError("a 400-digit CBOR bignum base time was accepted")
