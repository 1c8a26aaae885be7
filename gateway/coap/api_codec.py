"""What the CoAP API says on the wire: query parsing, content negotiation and payloads.

Pure code over values and bytes (no aiocoap, no sockets); ``api_resources`` does the I/O.

Reading pages
-------------
``/readings?after=SEQ&limit=N[&point=dev/pt ...]`` answers the readings with a sequence
number above SEQ, oldest first, at most N. The cursor for the next request travels in the
answer itself:

* SenML (CBOR 112, JSON 110): the first record carries two extension fields, ``"next"``
  (the sequence number to pass as ``after`` next time) and ``"more"`` (true when the page was
  full, so more readings may be waiting). Text labels without a trailing ``_`` are ignored by
  SenML receivers that do not know them (RFC 8428 §4.4), so the pack stays valid SenML. An
  empty pack (``[]``) means nothing is stored after SEQ: keep the cursor you sent.
* JSON (50) / CBOR (60): ``{"next": N, "more": bool, "readings": [{seq, point, value, ts,
  unit, quality, clock_synced}, ...]}``.

A client that always sends the ``next`` it received sees every reading exactly once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cbor2

from ..model import Quality, StoredReading, Value, is_valid_point_name
from ..units import parse_duration
from .numbers import (
    CONTENT_FORMAT_CBOR,
    CONTENT_FORMAT_JSON,
    CONTENT_FORMAT_SENML_CBOR,
    CONTENT_FORMAT_SENML_JSON,
    CONTENT_FORMAT_TEXT,
)
from .senml import encode_senml_cbor, encode_senml_json

#: formats each kind of resource offers, default first
READINGS_FORMATS = (
    CONTENT_FORMAT_SENML_CBOR,
    CONTENT_FORMAT_SENML_JSON,
    CONTENT_FORMAT_JSON,
    CONTENT_FORMAT_CBOR,
)
POINT_FORMATS = READINGS_FORMATS + (CONTENT_FORMAT_TEXT,)
DOCUMENT_FORMATS = (CONTENT_FORMAT_CBOR, CONTENT_FORMAT_JSON)
#: formats a write may carry its value in
WRITE_FORMATS = (CONTENT_FORMAT_TEXT, CONTENT_FORMAT_JSON, CONTENT_FORMAT_CBOR)

NEXT_LABEL = "next"
MORE_LABEL = "more"


class RequestError(ValueError):
    """A request the API cannot serve as asked; the message tells the client why."""


class NotAcceptable(RequestError):
    """The client's Accept option names no format this resource offers (4.06)."""


class UnsupportedFormat(RequestError):
    """A write's payload is in a content format the API does not read (4.15)."""


@dataclass(frozen=True, slots=True)
class ReadingsQuery:
    """A readings page asked for: after which sequence number, how many, and which points."""

    after: int
    limit: int
    points: tuple[str, ...] | None = None


def negotiate(accept: int | None, offered: Sequence[int]) -> int:
    """The content format to answer in: the client's Accept, or our default (the first)."""
    if accept is None:
        return offered[0]
    if accept not in offered:
        raise NotAcceptable(f"Accept {accept} not offered; use one of {', '.join(map(str, offered))}")
    return accept


def parse_readings_query(query: Iterable[str], default_limit: int, max_limit: int) -> ReadingsQuery:
    after, limit, points = 0, default_limit, []
    for item in query:
        key, sep, value = item.partition("=")
        if not sep:
            raise RequestError(f"query '{item}' needs a value (e.g. after=0)")
        if key == "after":
            after = _non_negative_int(key, value)
        elif key == "limit":
            limit = _non_negative_int(key, value)
            if limit < 1:
                raise RequestError("limit must be at least 1")
            limit = min(limit, max_limit)
        elif key == "point":
            if not is_valid_point_name(value):
                raise RequestError(f"point '{value}' is not a device/point name")
            points.append(value)
        else:
            raise RequestError(f"unknown query '{key}'; use after, limit and point")
    return ReadingsQuery(after, limit, tuple(points) or None)


#: the largest sequence number SQLite can hold (a signed 64-bit INTEGER)
MAX_QUERY_INT = 2**63 - 1


def _non_negative_int(key: str, text: str) -> int:
    # ASCII digits only: str.isdigit() also accepts '²', which int() then refuses.
    if (
        not (text.isascii() and text.isdigit())
        or len(text) > len(str(MAX_QUERY_INT))
        or int(text) > MAX_QUERY_INT
    ):
        raise RequestError(f"{key} must be a whole number from 0 to {MAX_QUERY_INT}, got '{text[:40]}'")
    return int(text)


# -- reading pages -------------------------------------------------------------------------


def encode_page(readings: Sequence[StoredReading], query: ReadingsQuery, content_format: int) -> bytes:
    """One page of ``/readings`` in ``content_format``; see the module docstring for the cursor."""
    next_cursor = readings[-1].seq if readings else query.after
    more = len(readings) >= query.limit
    if content_format == CONTENT_FORMAT_SENML_CBOR:
        return _with_first_record_fields_cbor(encode_senml_cbor(readings), next_cursor, more)
    if content_format == CONTENT_FORMAT_SENML_JSON:
        return _with_first_record_fields_json(encode_senml_json(readings), next_cursor, more)
    document = {
        NEXT_LABEL: next_cursor,
        MORE_LABEL: more,
        "readings": [reading_document(r) for r in readings],
    }
    return encode_document(document, content_format)


def _with_first_record_fields_json(pack: bytes, next_cursor: int, more: bool) -> bytes:
    if pack == b"[]":
        return pack
    assert pack.startswith(b"[{"), pack[:8]
    head = f'[{{"{NEXT_LABEL}":{next_cursor},"{MORE_LABEL}":{"true" if more else "false"},'
    rest = pack[2:]
    return head.encode() + rest if rest[:1] != b"}" else head[:-1].encode() + rest


def _with_first_record_fields_cbor(pack: bytes, next_cursor: int, more: bool) -> bytes:
    """Add the cursor fields to the first record of a SenML+CBOR pack without re-encoding it.

    The pack is an array of maps; we bump the first map's length by two and put the new
    pairs right after its header (CBOR maps need no key order unless canonical).
    """
    if pack == b"\x80":
        return pack
    header = _array_header_length(pack)
    map_byte = pack[header]
    if not 0xA0 <= map_byte <= 0xA0 + 21:  # a SenML record never has 22+ fields
        raise ValueError("unexpected SenML record header")
    extra = cbor2.dumps(NEXT_LABEL) + cbor2.dumps(next_cursor) + cbor2.dumps(MORE_LABEL) + cbor2.dumps(more)
    return pack[:header] + bytes([map_byte + 2]) + extra + pack[header + 1 :]


def _array_header_length(pack: bytes) -> int:
    initial = pack[0]
    if not 0x80 <= initial <= 0x9B:
        raise ValueError("a SenML pack must be a CBOR array")
    info = initial & 0x1F
    return 1 if info < 24 else 1 + (1 << (info - 24))


def reading_document(r: StoredReading) -> dict[str, Any]:
    return {
        "seq": r.seq or None,
        "point": r.point,
        "value": _plain(r.value),
        "ts": r.ts,
        "unit": r.unit,
        "quality": Quality(r.quality).name.lower(),
        "clock_synced": r.clock_synced,
    }


def _plain(value: Value) -> Value:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


# -- one point -----------------------------------------------------------------------------


def encode_point(reading: StoredReading | None, content_format: int) -> bytes:
    """The latest value of a point; ``None`` (no reading yet) is an empty pack, null or ''."""
    if reading is None:
        if content_format in (CONTENT_FORMAT_SENML_CBOR, CONTENT_FORMAT_CBOR):
            return cbor2.dumps([] if content_format == CONTENT_FORMAT_SENML_CBOR else None)
        if content_format in (CONTENT_FORMAT_SENML_JSON, CONTENT_FORMAT_JSON):
            return b"[]" if content_format == CONTENT_FORMAT_SENML_JSON else b"null"
        return b""
    if content_format == CONTENT_FORMAT_SENML_CBOR:
        return encode_senml_cbor([reading])
    if content_format == CONTENT_FORMAT_SENML_JSON:
        return encode_senml_json([reading])
    if content_format == CONTENT_FORMAT_TEXT:
        value = reading.value
        text = (
            _exact_text(value)
            if isinstance(value, float)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        return (text + (f" {reading.unit}" if reading.unit else "")).encode()
    return encode_document(reading_document(reading), content_format)


def _exact_text(value: float) -> str:
    """The shortest text that reads back as the same double (``:g`` would cut 12345.67 to
    12345.7); integral values without the ``.0``."""
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**53 and math.copysign(1.0, value) > 0:
        return str(int(value))
    return repr(value)


# -- documents (health, rules, overrides) --------------------------------------------------


def encode_document(document: Any, content_format: int) -> bytes:
    if content_format == CONTENT_FORMAT_CBOR:
        return cbor2.dumps(document, default=_cbor_fallback)
    if content_format == CONTENT_FORMAT_JSON:
        return json.dumps(document, separators=(",", ":"), default=str).encode()
    raise NotAcceptable(f"content format {content_format} not offered")


def _cbor_fallback(encoder: Any, value: Any) -> None:
    encoder.encode(str(value))


# -- writes --------------------------------------------------------------------------------


def decode_body(payload: bytes, content_format: int | None) -> Any:
    """The value or map a write carries; text is read as JSON when it parses, else as text."""
    if content_format is None:
        content_format = CONTENT_FORMAT_TEXT
    try:
        if content_format == CONTENT_FORMAT_CBOR:
            return cbor2.loads(payload)
        if content_format == CONTENT_FORMAT_JSON:
            return json.loads(payload)
    except Exception as exc:  # noqa: BLE001 - both decoders raise several types
        raise RequestError(
            f"payload is not valid {'CBOR' if content_format == CONTENT_FORMAT_CBOR else 'JSON'}: {exc}"
        ) from None
    if content_format == CONTENT_FORMAT_TEXT:
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise RequestError("text payload is not UTF-8") from None
        try:
            return json.loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the decoder goes
            return text
    raise UnsupportedFormat(f"write payloads may be text (0), JSON (50) or CBOR (60), not {content_format}")


def value_for_point(body: Any, kind: str, point: str) -> Value:
    """Check ``body`` (a bare value or ``{"value": v}``) against the point's kind."""
    value = body.get("value") if isinstance(body, dict) else body
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false", "on", "off"):
            return value.lower() in ("true", "on")
    elif kind == "string":
        if isinstance(value, str):
            return value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise RequestError(f"{point}: value must be a finite number")
        if isinstance(value, int) and not -MAX_QUERY_INT - 1 <= value <= MAX_QUERY_INT:
            # The buffer stores whole numbers as SQLite's 64-bit INTEGER.
            raise RequestError(f"{point}: whole number out of range (64-bit)")
        return value
    raise RequestError(f"{point}: expected a {kind} value, got {_short(value)}")


def _short(value: Any) -> str:
    """``repr(value)`` cut short: a client's megabyte string must not come back in the answer."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def override_from_body(body: Any, kind: str, point: str) -> tuple[Value, float]:
    """``{"value": v, "duration": "15m" | seconds}`` -> (value, seconds)."""
    if not isinstance(body, dict) or "value" not in body or "duration" not in body:
        raise RequestError('an override is {"value": ..., "duration": "15m" or seconds}')
    unknown = set(body) - {"value", "duration"}
    if unknown:
        raise RequestError(f"unknown override field(s): {_short(sorted(map(str, unknown)))}")
    duration = body["duration"]
    if isinstance(duration, str):
        try:
            duration = parse_duration(duration)
        except ValueError as exc:
            raise RequestError(f"duration: {str(exc)[:200]}") from None
    seconds = None
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        try:
            seconds = float(duration)
        except OverflowError:  # a 400-digit integer
            seconds = None
    if seconds is None or not 0 < seconds < math.inf:
        raise RequestError("duration must be positive seconds or a text such as '15m'")
    return value_for_point(body["value"], kind, point), seconds
