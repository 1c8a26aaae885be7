"""Payloads of uplink batches per upstream format: SenML+CBOR, SenML+JSON, ThingsBoard JSON.

Sans-IO: readings and a batch id in, (payload bytes, content-format number) out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from . import numbers
from .senml import BatchId, Dropped, ReadingLike, encode_senml_cbor, encode_senml_json


def encode_batch(
    fmt: str,
    readings: Sequence[ReadingLike],
    batch: BatchId,
    *,
    base_name: str,
    dropped: Dropped | None = None,
    compact_floats: bool = False,
) -> tuple[bytes, int]:
    """``dropped`` announces readings lost at the gateway (SenML only: ThingsBoard telemetry
    has no place for it; there the loss shows only in the gateway's health and log)."""
    if fmt == "senml+cbor":
        return (
            encode_senml_cbor(
                readings,
                base_name=base_name,
                batch=batch,
                dropped=dropped,
                compact_floats=compact_floats,
                half_floats=compact_floats,
            ),
            numbers.CONTENT_FORMAT_SENML_CBOR,
        )
    if fmt == "senml+json":
        return (
            encode_senml_json(readings, base_name=base_name, batch=batch, dropped=dropped),
            numbers.CONTENT_FORMAT_SENML_JSON,
        )
    if fmt == "thingsboard":
        return encode_thingsboard(readings), numbers.CONTENT_FORMAT_JSON
    raise ValueError(f"unknown uplink format '{fmt}'")


def encode_thingsboard(readings: Sequence[ReadingLike]) -> bytes:
    """ThingsBoard device telemetry: ``[{"ts": ms, "values": {"device/point": v}}, ...]``.

    Readings sharing a millisecond share an entry. ThingsBoard keys telemetry by
    (device, key, ts), so a re-sent batch overwrites itself: duplicates are harmless there.
    """
    entries: list[dict[str, Any]] = []
    by_ts: dict[int, dict[str, Any]] = {}
    for reading in readings:
        ts = round(reading.ts * 1000)
        values = by_ts.get(ts)
        if values is None:
            values = by_ts[ts] = {}
            entries.append({"ts": ts, "values": values})
        value = reading.value
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)
        values[reading.point] = value
    return json.dumps(entries, separators=(",", ":"), allow_nan=False).encode()


def dropped_in_range(after: int, last: int, seqs: Sequence[int]) -> Dropped | None:
    """The readings a batch covering buffer sequence numbers ``after`` < seq <= ``last``
    should hold but does not (the hard quota removed them): their count and span."""
    count = (last - after) - len(seqs)
    if count <= 0:
        return None
    first: int | None = None
    final = after
    expected = after + 1
    for seq in seqs:
        if seq > expected:
            first = expected if first is None else first
            final = seq - 1
        expected = seq + 1
    if expected <= last:
        first = expected if first is None else first
        final = last
    assert first is not None
    return Dropped(count, first, final)
