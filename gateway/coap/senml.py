"""SenML (RFC 8428) packs from readings and back: CBOR (content-format 112) and JSON (110).

Pure code over values and bytes, no I/O. Shared by the uplink and the CoAP API server.

Public API (stable)
-------------------
``encode_senml_cbor(readings, *, base_name="", batch=None, dropped=None,
compact_floats=False, half_floats=False) -> bytes``
``encode_senml_json(readings, *, base_name="", batch=None, dropped=None) -> bytes``
    ``readings`` is any sequence of objects with ``point``, ``value``, ``ts`` (UTC epoch
    seconds) and ``unit`` (``Reading`` and ``StoredReading`` both fit). ``base_name`` is
    prefixed to every point name (the uplink uses ``"<gateway-id>/"``). ``batch`` adds the
    duplicate-detection fields and ``dropped`` the drop announcement (see below); leave both
    None outside the uplink.
``decode_senml_cbor(payload, *, time_digits=None) -> SenmlPack`` / ``decode_senml_json(...)``
    Resolve a pack (any valid SenML, not only ours) into records with base values applied;
    ``.batch`` holds the ``BatchId`` and ``.dropped`` the ``Dropped`` announcement when
    present. Raises ``SenmlError`` with a readable reason on malformed input.
    ``time_digits=3`` rounds times to the millisecond (needed only for lossy packs).

Layout (why it is small)
------------------------
Records are grouped by point, in order of each point's first appearance (points without a
unit first, because ``bu`` cannot be unset); within a point they keep their original order.
The first record of a group sets ``bn`` to the full name (and ``bu`` to the unit), so the
following records of that point carry no name at all, only value and time. A receiver that
needs global order sorts the resolved records by time; ties keep record order.

Exact by default
----------------
Every value decodes, with any CBOR or JSON decoder, to exactly the double the buffer holds:
CBOR floats go in the shortest width that holds the double exactly (RFC 8949 preferred
serialization: 1.5 as float16, 86.1 as float64); integral floats go as integers (the same
number; -0.0 stays a float). The first record sets ``bt`` to the first reading's time, and
``bt + t``, added as IEEE doubles, is exactly each reading's timestamp (see ``_ExactTimes``).
JSON writes the shortest decimal text that reads back as the same double.

``compact_floats=True`` (CBOR only) is lossy and opt-in: a float value goes as float32 (or,
with ``half_floats``, float16 first) when that width still reproduces every decimal digit of
the value (21.3 arrives as 21.299999237 or 21.296875, and only a receiver that rounds to
three digits gets 21.3 back), and ``t`` as the shortest number that rounds back to the same
millisecond.

Duplicate detection
-------------------
With ``batch=BatchId(gateway_id, seq)`` the first record also carries two extension fields,
``"gw"`` (text, the gateway id) and ``"batch"`` (unsigned integer, the batch sequence
number, 1, 2, 3 ... per gateway and upstream). They are text labels in both encodings and do
not end in ``_``, so RFC 8428 receivers that do not know them ignore them. A retried batch
always carries the same number; a receiver keeps the highest number accepted per gateway id
and acknowledges, but drops, any batch not above it.

Drop announcement
-----------------
With ``dropped=Dropped(count, first, last)`` the first record carries ``"dropped"``,
``"dropped_first"`` and ``"dropped_last"`` (unsigned integers): ``count`` readings with
buffer sequence numbers ``first`` to ``last`` were removed at the gateway (hard quota) before
this upstream had them. A pack may announce drops and hold no readings at all.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cbor2

# RFC 8428 §6, Table 4: integer labels of the CBOR representation.
BASE_NAME = -2
BASE_TIME = -3
BASE_UNIT = -4
BASE_VALUE = -5
BASE_SUM = -6
BASE_VERSION = -1
NAME = 0
UNIT = 1
VALUE = 2
STRING_VALUE = 3
BOOL_VALUE = 4
SUM = 5
TIME = 6
UPDATE_TIME = 7
DATA_VALUE = 8

#: CBOR integer label -> JSON label, for the fields the gateway writes and reads.
JSON_LABELS: dict[int, str] = {
    BASE_VERSION: "bver",
    BASE_NAME: "bn",
    BASE_TIME: "bt",
    BASE_UNIT: "bu",
    BASE_VALUE: "bv",
    BASE_SUM: "bs",
    NAME: "n",
    UNIT: "u",
    VALUE: "v",
    STRING_VALUE: "vs",
    BOOL_VALUE: "vb",
    SUM: "s",
    TIME: "t",
    UPDATE_TIME: "ut",
    DATA_VALUE: "vd",
}
_CBOR_LABELS = {text: number for number, text in JSON_LABELS.items()}

#: extension labels carrying the duplicate-detection id (text labels in both encodings)
GATEWAY_ID_LABEL = "gw"
BATCH_SEQ_LABEL = "batch"
#: extension labels announcing readings dropped at the gateway (unsigned integers)
DROPPED_LABEL = "dropped"
DROPPED_FIRST_LABEL = "dropped_first"
DROPPED_LAST_LABEL = "dropped_last"

# RFC 8428 §4.5.3: times below 2**28 are relative to "now", not to the epoch.
_RELATIVE_TIME_LIMIT = 2**28


class SenmlError(ValueError):
    """A pack that is not valid SenML; the message says what and where."""


class ReadingLike(Protocol):
    """What a pack is encoded from: a point name, its value, when it was read and its unit."""

    @property
    def point(self) -> str: ...
    @property
    def value(self) -> bool | int | float | str: ...
    @property
    def ts(self) -> float: ...
    @property
    def unit(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class BatchId:
    """What lets a receiver drop a batch it has already accepted."""

    gateway_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class Dropped:
    """Readings the gateway removed from its buffer before this upstream had them (the hard
    quota): ``count`` readings with buffer sequence numbers from ``first`` to ``last``."""

    count: int
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class ResolvedRecord:
    """One SenML record with base values applied (RFC 8428 §4.6)."""

    name: str
    value: bool | int | float | str | bytes | None
    time: float
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class SenmlPack:
    """A decoded pack: its records with base values applied, and the batch id and dropped
    range a gateway adds, when present."""

    records: tuple[ResolvedRecord, ...]
    batch: BatchId | None = None
    dropped: Dropped | None = None


# -- encoding ------------------------------------------------------------------------------


def encode_senml_cbor(
    readings: Sequence[ReadingLike],
    *,
    base_name: str = "",
    batch: BatchId | None = None,
    dropped: Dropped | None = None,
    compact_floats: bool = False,
    half_floats: bool = False,
) -> bytes:
    """A SenML+CBOR pack (content-format 112) of ``readings``; see the module docstring.

    By default every value and time decodes to exactly the double given; ``compact_floats``
    (lossy, opt-in) sends float32 (and with ``half_floats`` float16) approximations instead.
    """
    widths = (_F16, _F32) if half_floats else (_F32,)
    lossy = widths if compact_floats else ()
    records = _records(readings, base_name, batch, dropped, lossy, cbor=True)
    return cbor2.dumps(records, canonical=True)


def encode_senml_json(
    readings: Sequence[ReadingLike],
    *,
    base_name: str = "",
    batch: BatchId | None = None,
    dropped: Dropped | None = None,
) -> bytes:
    """A SenML+JSON pack (content-format 110) of ``readings``; see the module docstring."""
    records = _records(readings, base_name, batch, dropped, (), cbor=False)
    return json.dumps(records, separators=(",", ":"), allow_nan=False).encode()


def _records(
    readings: Sequence[ReadingLike],
    base_name: str,
    batch: BatchId | None,
    dropped: Dropped | None,
    lossy_widths: tuple[struct.Struct, ...],
    *,
    cbor: bool,
) -> list[dict[Any, Any]]:
    if not readings:
        return [_head_fields({}, batch, dropped)] if batch is not None or dropped is not None else []
    groups: dict[str, list[ReadingLike]] = {}
    for reading in readings:
        group = groups.get(reading.point)
        if group is None:
            groups[reading.point] = [reading]
        else:
            group.append(reading)
    label = _label_cbor if cbor else _label_json
    value_of = _cbor_value if cbor else _json_value
    times: _ExactTimes | _LossyTimes = _LossyTimes(readings[0].ts) if lossy_widths else _ExactTimes(cbor=cbor)
    out: list[dict[Any, Any]] = []
    # bu stays in force until replaced and cannot be unset, so points without a unit go first.
    ordered = sorted(groups.values(), key=lambda group: group[0].unit is not None and group[0].unit != "")
    for group in ordered:
        point = group[0].point
        first = True
        for reading in group:
            record: dict[Any, Any] = {}
            if first:
                record[label(BASE_NAME)] = base_name + point
                if reading.unit:
                    record[label(BASE_UNIT)] = reading.unit
                first = False
            key, value = value_of(reading.value, lossy_widths)
            record[label(key)] = value
            base, offset = times.of(reading.ts, first_record=not out)
            if base is not None:
                record[label(BASE_TIME)] = base
            if offset is not None:
                record[label(TIME)] = offset
            out.append(record)
    _head_fields(out[0], batch, dropped)
    return out


def _label_cbor(label: int) -> int:
    return label


def _label_json(label: int) -> str:
    return JSON_LABELS[label]


def _head_fields(record: dict[Any, Any], batch: BatchId | None, dropped: Dropped | None) -> dict[Any, Any]:
    if batch is not None:
        record[GATEWAY_ID_LABEL] = batch.gateway_id
        record[BATCH_SEQ_LABEL] = batch.seq
    if dropped is not None:
        record[DROPPED_LABEL] = dropped.count
        record[DROPPED_FIRST_LABEL] = dropped.first
        record[DROPPED_LAST_LABEL] = dropped.last
    return record


def _whole_or_float(ms: int) -> int | float:
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


_F16 = struct.Struct("<e")
_F32 = struct.Struct("<f")


class _ExactTimes:
    """Times a receiver reproduces bit for bit: ``bt + t`` (one IEEE double addition) is
    exactly the reading's timestamp.

    ``t`` is the shortest number for which that addition holds (an integer, float16, float32,
    or the exact double difference, which Sterbenz's lemma makes exact for times within a
    factor of two of ``bt``, i.e. any two epoch times after 1970-01-02). Where no offset works
    (times of wildly different magnitude, such as an unsynchronised clock near 1970), the
    record sets a new ``bt`` itself, which SenML lets any record do.
    """

    def __init__(self, *, cbor: bool):
        self.base = 0.0
        self.cbor = cbor

    def of(self, ts: float, *, first_record: bool) -> tuple[int | float | None, int | float | None]:
        ts = float(ts)
        if first_record:
            self.base = ts
            return _exact_number(ts), None
        if ts == self.base and math.copysign(1.0, ts) == math.copysign(1.0, self.base):
            return None, None
        for offset in self._candidates(ts - self.base):
            if self.base + offset == ts:
                return None, offset
        self.base = ts
        return _exact_number(ts), None

    def _candidates(self, delta: float) -> list[int | float]:
        out: list[int | float] = []
        if delta.is_integer() and abs(delta) < 2**53:
            out.append(int(delta))
        if self.cbor:
            for packer in (_F16, _F32):
                try:
                    out.append(float(packer.unpack(packer.pack(delta))[0]))
                except OverflowError:
                    continue
        else:
            out.append(round(delta, 3))  # "10.123" rather than "10.122999906539917" when it adds up
        out.append(delta)
        return out


class _LossyTimes:
    """``compact_floats``: times rounded to the millisecond, ``t`` as the shortest number that
    rounds back to the same millisecond (the receiver must round ``bt + t`` to ms)."""

    def __init__(self, first_ts: float):
        self.base_ms = round(first_ts * 1000)

    def of(self, ts: float, *, first_record: bool) -> tuple[int | float | None, int | float | None]:
        delta = round(ts * 1000) - self.base_ms
        base = _whole_or_float(self.base_ms) if first_record else None
        return base, (_cbor_time(delta) if delta else None)


def _exact_number(value: float) -> int | float:
    """``value`` itself, as an integer when that is the same number (and not -0.0);
    cbor2's canonical mode writes a float in the shortest width that holds it exactly."""
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**53 and not _negative_zero(value):
        return int(value)
    return value


def _negative_zero(value: float) -> bool:
    return value == 0 and math.copysign(1.0, value) < 0


def _cbor_time(delta_ms: int) -> int | float:
    """The shortest number that rounds back to ``delta_ms`` milliseconds (lossy mode)."""
    if delta_ms % 1000 == 0:
        return delta_ms // 1000
    exact = delta_ms / 1000
    for packer in (_F16, _F32):
        try:
            narrow = packer.unpack(packer.pack(exact))[0]
        except OverflowError:
            continue
        # Clearly nearer than half a millisecond, so that bt + t still rounds to the right
        # millisecond after the receiver's own float addition (no ties).
        if abs(narrow * 1000 - delta_ms) < 0.45:
            return float(narrow)  # cbor2 (canonical) writes it in the narrow width
    return exact


def _cbor_value(value: Any, lossy_widths: tuple[struct.Struct, ...]) -> tuple[int, Any]:
    if isinstance(value, bool):
        return BOOL_VALUE, value
    if isinstance(value, str):
        return STRING_VALUE, value
    if isinstance(value, float):
        return VALUE, _compact_float(value, lossy_widths) if lossy_widths else _exact_number(value)
    return VALUE, value


def _json_value(value: Any, widths: tuple[struct.Struct, ...]) -> tuple[int, Any]:
    if isinstance(value, bool):
        return BOOL_VALUE, value
    if isinstance(value, str):
        return STRING_VALUE, value
    if isinstance(value, float):
        if not math.isfinite(value):
            # JSON has no NaN or infinity; say it in words rather than drop the reading.
            return STRING_VALUE, repr(value)
        return VALUE, _exact_number(value)  # json writes the shortest text that reads back exactly
    return VALUE, value


def _compact_float(value: float, widths: tuple[struct.Struct, ...]) -> int | float:
    if not math.isfinite(value):
        return value
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    digits = _significant_digits(repr(value))
    if digits > 9:
        return value
    for packer in widths:
        try:
            narrow = packer.unpack(packer.pack(value))[0]
        except OverflowError:
            continue
        if narrow == value:
            return value  # exact in this width already; cbor2 picks it
        if math.isfinite(narrow) and float(f"{narrow:.{digits}g}") == value:
            return float(narrow)
    return value


def _significant_digits(text: str) -> int:
    mantissa = text.lower().split("e", 1)[0].lstrip("-").replace(".", "").strip("0")
    return max(len(mantissa), 1)


# -- decoding ------------------------------------------------------------------------------


def decode_senml_cbor(payload: bytes, *, time_digits: int | None = None) -> SenmlPack:
    """Resolve a SenML+CBOR pack; raises SenmlError when it is not one.

    ``time_digits=3`` rounds resolved times to the millisecond; only packs encoded with the
    lossy ``compact_floats`` need it (exact packs resolve to the timestamps themselves).
    """
    try:
        raw = cbor2.loads(payload)
    except Exception as exc:  # noqa: BLE001 - cbor2 raises several types for bad input
        raise SenmlError(f"not CBOR: {exc}") from None
    return _resolve_numbers(raw, cbor=True, time_digits=time_digits)


def decode_senml_json(payload: bytes | str, *, time_digits: int | None = None) -> SenmlPack:
    """Resolve a SenML+JSON pack; raises SenmlError when it is not one."""
    try:
        raw = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the decoder goes
        raise SenmlError(f"not JSON: {exc}") from None
    return _resolve_numbers(raw, cbor=False, time_digits=time_digits)


def _resolve_numbers(raw: Any, *, cbor: bool, time_digits: int | None) -> SenmlPack:
    try:
        return _resolve(raw, cbor=cbor, time_digits=time_digits)
    except OverflowError:  # a 400-digit time or value cannot become a float
        raise SenmlError("a time or value is out of range") from None


def _resolve(raw: Any, *, cbor: bool, time_digits: int | None) -> SenmlPack:
    if not isinstance(raw, list):
        raise SenmlError("a SenML pack must be an array of records")
    base_name, base_time, base_unit, base_value = "", 0.0, None, None
    batch: BatchId | None = None
    dropped: Dropped | None = None
    records: list[ResolvedRecord] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise SenmlError(f"record {index} is not a map")
        record = item if cbor else {_CBOR_LABELS.get(k, k): v for k, v in item.items()}
        if index == 0 and GATEWAY_ID_LABEL in record and BATCH_SEQ_LABEL in record:
            gw, seq = record[GATEWAY_ID_LABEL], record[BATCH_SEQ_LABEL]
            if not isinstance(gw, str) or not isinstance(seq, int) or isinstance(seq, bool):
                raise SenmlError("record 0: 'gw' must be text and 'batch' an integer")
            batch = BatchId(gw, seq)
        if index == 0:
            dropped = _dropped_fields(record)
        for key in record:
            if isinstance(key, str) and key.endswith("_"):
                raise SenmlError(f"record {index}: must-understand field '{key}' is not supported")
        base_name = _typed(record, BASE_NAME, str, base_name, index)
        base_time = float(_typed(record, BASE_TIME, (int, float), base_time, index))
        base_unit = _typed(record, BASE_UNIT, str, base_unit, index)
        base_value = _typed(record, BASE_VALUE, (int, float), base_value, index)
        values = [k for k in (VALUE, STRING_VALUE, BOOL_VALUE, DATA_VALUE, SUM) if k in record]
        if not values and base_value is None:
            if any(k in record for k in (NAME, UNIT, TIME)):
                raise SenmlError(f"record {index} has no value")
            continue
        name = base_name + _typed(record, NAME, str, "", index)
        if not name:
            raise SenmlError(f"record {index} has no name (neither bn nor n)")
        value: Any = record[values[0]] if values else None
        if values and values[0] == VALUE:
            value = _typed(record, VALUE, (int, float), None, index)
            if base_value is not None:
                value += base_value
        elif not values:
            value = base_value
        time = base_time + float(_typed(record, TIME, (int, float), 0, index))
        if time_digits is not None:
            time = round(time, time_digits)
        unit = _typed(record, UNIT, str, None, index) or base_unit
        records.append(ResolvedRecord(name, value, time, unit))
    return SenmlPack(tuple(records), batch, dropped)


def _dropped_fields(record: dict[Any, Any]) -> Dropped | None:
    labels = (DROPPED_LABEL, DROPPED_FIRST_LABEL, DROPPED_LAST_LABEL)
    if not any(label in record for label in labels):
        return None
    values = [record.get(label) for label in labels]
    counts = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= 0]
    if len(counts) != len(labels):
        raise SenmlError(
            "record 0: 'dropped', 'dropped_first' and 'dropped_last' must be "
            "unsigned integers, all three together"
        )
    return Dropped(*counts)


def _typed(
    record: dict[Any, Any], label: int, kinds: type | tuple[type, ...], default: Any, index: int
) -> Any:
    if label not in record:
        return default
    value = record[label]
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise SenmlError(f"record {index}: field '{JSON_LABELS[label]}' has the wrong type ({value!r})")
    return value


def resolve_times(records: Iterable[ResolvedRecord], now: float) -> list[ResolvedRecord]:
    """Apply RFC 8428's rule that times below 2**28 are relative to ``now``."""
    return [
        r if r.time >= _RELATIVE_TIME_LIMIT else ResolvedRecord(r.name, r.value, now + r.time, r.unit)
        for r in records
    ]
