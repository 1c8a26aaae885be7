"""Hostile CoAP API requests: queries, write payloads in every content format, Block1 sequences.
A bad request is a 4.xx answer, counted by reason in health, logged in one line, never a 5.00."""

from __future__ import annotations

import asyncio
import json
import logging

import aiocoap
import cbor2
from aiocoap.numbers.codes import Code
from hypothesis import given
from hypothesis import strategies as st

from gateway.coap import api_codec as codec
from gateway.coap.numbers import CONTENT_FORMAT_CBOR, CONTENT_FORMAT_JSON, CONTENT_FORMAT_TEXT
from gateway.service import Service
from tests.conftest import running

from .mutate import FUZZ, _mutate_bytes, _mutate_text, bytes_case, text_case

QUERY_SEEDS = [
    "after=0&limit=50",
    "after=12345&limit=1&point=lamp/level&point=lamp/power",
    "limit=1000",
    "point=air-1/pm2_5",
    "after=9223372036854775807",
]


def check_readings_query(text: str) -> None:
    try:
        query = codec.parse_readings_query(text.split("&"), 50, 500)
    except codec.RequestError:
        return
    assert 0 <= query.after < 2**63 and 1 <= query.limit <= 500  # fits SQLite, never 5.00 there


WRITE_SEEDS = [
    b"42",
    b"true",
    b"on",
    b'{"value": 21.5}',
    b'{"value": "text", "duration": "15m"}',
    b'{"value": false, "duration": 900}',
    cbor2.dumps({"value": 1, "duration": 60.5}),
    cbor2.dumps(3.25),
    cbor2.dumps({"value": "on", "duration": "1h30m"}),
    cbor2.dumps(True),
]
PAYLOAD_HOSTILE = (
    b"1e999",
    b"NaN",
    b"-Infinity",
    b"9" * 5000,
    b"[" * 5000,
    b"\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00",
    b"\xc2\x49\x01" + b"\x00" * 9,
    b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xf7",
    b"\xd9\xd9\xf7",
    b"\x81" * 500,
    b'"',
    b"{",
    b"\x00",
    b"\xff",
)
FORMATS = (None, CONTENT_FORMAT_TEXT, CONTENT_FORMAT_JSON, CONTENT_FORMAT_CBOR, 112, 65535)
KINDS = ("number", "bool", "string")


def check_write_payload(payload: bytes, content_format: int | None, kind: str) -> None:
    """The PUT paths of /points/... and /overrides/...: decode, then check against the point's kind."""
    try:
        body = codec.decode_body(payload, content_format)
    except codec.RequestError:
        return
    for check in (
        lambda: codec.value_for_point(body, kind, "lamp/level"),
        lambda: codec.override_from_body(body, kind, "lamp/level"),
    ):
        try:
            result = check()
        except codec.RequestError as exc:
            assert len(str(exc)) < 300  # the answer never echoes a huge payload back
            continue
        value = result[0] if isinstance(result, tuple) else result
        if isinstance(value, int) and not isinstance(value, bool):
            assert -(2**63) <= value < 2**63  # fits the buffer's INTEGER column
        elif isinstance(value, float):
            assert value - value == 0
        if isinstance(result, tuple):
            assert 0 < result[1] < float("inf")


@FUZZ
@given(st.integers(0, 2**64 - 1))
def test_fuzz_api_queries_and_write_payloads(n: int) -> None:
    """Each example is one query and one write payload (in one of the formats, for one kind)."""
    check_readings_query(text_case(n, QUERY_SEEDS))
    check_write_payload(
        bytes_case(n + 1, WRITE_SEEDS, PAYLOAD_HOSTILE),
        FORMATS[n % len(FORMATS)],
        KINDS[n // len(FORMATS) % len(KINDS)],
    )


def test_mutators_keep_their_types() -> None:
    import random

    rng = random.Random(1)
    assert isinstance(_mutate_bytes(b"abc", rng, 5, (b"x",)), bytes)
    assert isinstance(_mutate_text("abc", rng, 5, ("x",)), str)


def _block(number: int, more: bool, payload: bytes) -> aiocoap.Message:
    message = aiocoap.Message(code=Code.PUT, payload=payload, content_format=CONTENT_FORMAT_JSON)
    message.opt.block1 = (number, more, 0)  # 16-byte blocks
    return message


def test_hostile_requests_answer_4xx_are_counted_and_log_no_traceback(api_site, caplog) -> None:
    """`after` past SQLite's integers once answered 5.00 with a traceback, and a Block1 block that
    skips one once raised a bare ValueError out of aiocoap's reassembly (5.00, traceback)."""
    config, port, _ = api_site()
    base = f"coap://127.0.0.1:{port}"
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        service = Service(config)
        async with running(service):
            ctx = await aiocoap.Context.create_client_context()
            try:
                for query in ("after=99999999999999999999999", "after=²", "limit=1" + "0" * 200):
                    response = await ctx.request(
                        aiocoap.Message(code=Code.GET, uri=f"{base}/readings?{query}")
                    ).response
                    assert response.code == Code.BAD_REQUEST, (query, response)

                remote = f"{base}/points/lamp/level"
                first = _block(0, True, json.dumps({"value": 1.0}).encode().ljust(16))
                first.set_request_uri(remote)
                response = await ctx.request(first, handle_blockwise=False).response
                assert response.code == Code.CONTINUE
                gap = _block(2, False, b"  }")
                gap.set_request_uri(remote)
                response = await ctx.request(gap, handle_blockwise=False).response
                assert response.code == Code.REQUEST_ENTITY_INCOMPLETE, response
                orphan = _block(3, False, b"}")
                orphan.set_request_uri(f"{base}/readings")
                response = await ctx.request(orphan, handle_blockwise=False).response
                assert response.code == Code.REQUEST_ENTITY_INCOMPLETE, response
            finally:
                await ctx.shutdown()
            health = service.components["api"].health()
            assert health["bad_requests"] == {"query": 3, "block1": 2}

    asyncio.run(scenario())
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    assert all(r.levelno < logging.ERROR for r in caplog.records if r.name.startswith("gateway.coap")), [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ]
