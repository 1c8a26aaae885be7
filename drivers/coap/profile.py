"""CoAP device profiles: which resources a device serves and how each payload maps to points.

Pure code (no aiocoap, no sockets): profile files are parsed into typed values, and
``decode`` turns one response payload into point values or raises ``PayloadError`` naming the
device and the resource.

A profile is reusable (a sensor model), the device instance only says where it is::

    [profile]
    name = "thread-climate"

    [[resources]]
    path = "sensors/temperature"   # Uri-Path, no leading slash needed
    format = "text"                # text | senml | senml+json | senml+cbor | json | cbor
    observe = true                 # false: GET every poll_interval
    [[resources.points]]
    name = "temperature"
    unit = "Cel"
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2

from gateway.coap.numbers import (
    CONTENT_FORMAT_CBOR,
    CONTENT_FORMAT_JSON,
    CONTENT_FORMAT_SENML_CBOR,
    CONTENT_FORMAT_SENML_JSON,
    CONTENT_FORMAT_TEXT,
)
from gateway.coap.senml import SenmlError, decode_senml_cbor, decode_senml_json, resolve_times
from gateway.model import Value, is_valid_name_part
from gateway.options import Table
from gateway.problems import Problems, did_you_mean, load_toml

#: larger payloads are refused before any decoder sees them (a sensor answers a few records)
MAX_PAYLOAD = 64 * 1024
#: the largest whole number the buffer stores (SQLite INTEGER)
_INT64 = 2**63
_KINDS = ("number", "bool", "string")


class Format(enum.StrEnum):
    TEXT = "text"
    SENML = "senml"  # SenML-CBOR or -JSON, by the answer's Content-Format
    SENML_JSON = "senml+json"
    SENML_CBOR = "senml+cbor"
    JSON = "json"
    CBOR = "cbor"

    @property
    def accept(self) -> int | None:
        """The Accept option to ask with; None leaves the choice to the server."""
        return {
            Format.TEXT: CONTENT_FORMAT_TEXT,
            Format.SENML: CONTENT_FORMAT_SENML_CBOR,
            Format.SENML_JSON: CONTENT_FORMAT_SENML_JSON,
            Format.SENML_CBOR: CONTENT_FORMAT_SENML_CBOR,
            Format.JSON: CONTENT_FORMAT_JSON,
            Format.CBOR: CONTENT_FORMAT_CBOR,
        }.get(self)


class PayloadError(ValueError):
    """A payload that does not give the profile's values; the message names device and resource."""


@dataclass(frozen=True, slots=True)
class PointMap:
    """One point of a resource: where its value sits in the payload.

    ``record``: the SenML name after base-name resolution (``bn`` + ``n``); None takes the
    pack's only record. ``path``: dotted keys / list indexes into JSON or CBOR (``data.t``,
    ``values.0``); empty means the whole document is the value.
    """

    name: str
    unit: str | None = None
    kind: str = "number"
    writable: bool = False
    record: str | None = None
    path: tuple[str | int, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class ResourceDef:
    path: str  # Uri-Path without leading slash, e.g. "3303/0"
    format: Format
    points: tuple[PointMap, ...]
    observe: bool = True

    @property
    def uri_path(self) -> str:
        return "/" + self.path


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    resources: tuple[ResourceDef, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Decoded:
    """A point value from a payload; ``ts`` is the time the payload carries, or None."""

    point: str
    value: Value
    ts: float | None
    unit: str | None


# -- profile files ---------------------------------------------------------------------------

BUILTIN_DIR = "profiles"


def _builtin_dir() -> Path:
    # files next to this module, read with pathlib (importlib.resources: about 0.6 MB of imports)
    return Path(__file__).parent / BUILTIN_DIR


def builtin_profiles() -> list[str]:
    folder = _builtin_dir()
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def resolve_profile(reference: str, config_dir: Path) -> Path | None:
    """A built-in name (``ipso_temperature``) or a path relative to the site config."""
    if reference.endswith(".toml") or "/" in reference:
        return config_dir / reference
    if reference in builtin_profiles():
        return _builtin_dir() / f"{reference}.toml"
    return None


def unknown_profile_message(reference: str) -> str:
    names = builtin_profiles()
    return (
        f"no built-in profile '{reference}'{did_you_mean(reference, names)}; built-in: "
        f"{', '.join(names)}, or give a path to a .toml file"
    )


def load_profile(path: Path, problems: Problems) -> Profile | None:
    """The profile at ``path``; its problems are reported against that file."""
    file_problems = Problems(str(path))
    raw = load_toml(path, file_problems)
    profile = parse_profile(raw, file_problems) if raw is not None else None
    problems.extend(file_problems)
    return None if file_problems else profile


def parse_profile(raw: dict[str, Any], problems: Problems) -> Profile | None:
    root = Table(raw, problems)
    head = root.table("profile", required=True)
    name = head.str("name")
    description = head.str("description", "")
    head.finish()
    found: list[ResourceDef] = []
    seen_points: set[str] = set()
    for table in root.tables("resources"):
        resource = parse_resource(table, seen_points)
        if resource is not None:
            found.append(resource)
    root.finish()
    if not found and not problems:
        problems.add("resources", "a profile needs at least one [[resources]] entry")
    if problems or not isinstance(name, str):
        return None
    return Profile(name, tuple(found), description or "")


def parse_resource(table: Table, seen_points: set[str]) -> ResourceDef | None:
    path = table.str("path")
    fmt_text = table.str("format", "senml", choices=[f.value for f in Format])
    observe = table.bool("observe", True)
    points = [p for p in (parse_point(t, seen_points) for t in table.tables("points")) if p is not None]
    table.finish()
    if isinstance(path, str):
        path = path.strip("/")
        if not path or any(not part for part in path.split("/")):
            table.error("path", f"'{path}' is not a resource path such as 'sensors/temperature'")
            return None
    if not points:
        table.error("points", "a resource needs at least one [[resources.points]] entry")
        return None
    if not isinstance(path, str) or not isinstance(fmt_text, str):
        return None
    fmt = Format(fmt_text)
    if fmt is Format.TEXT and len(points) > 1:
        table.error("points", "a text resource holds one value: give it one point")
        return None
    return ResourceDef(path, fmt, tuple(points), bool(observe))


def parse_point(table: Table, seen: set[str]) -> PointMap | None:
    name = table.str("name")
    unit = table.str("unit", None)
    kind = table.str("kind", "number", choices=_KINDS)
    writable = table.bool("writable", False)
    record = table.str("record", None)
    path_text = table.str("path", "")
    description = table.str("description", "")
    table.finish()
    if not isinstance(name, str):
        return None
    if not all(is_valid_name_part(part) for part in name.split("/")):
        table.error("name", f"'{name}' may use letters, digits, '_', '-', '.' (and '/' between parts)")
        return None
    if name in seen:
        table.error("name", f"point '{name}' is mapped twice")
        return None
    seen.add(name)
    return PointMap(
        name,
        unit,
        kind or "number",
        bool(writable),
        record,
        parse_value_path(path_text) if isinstance(path_text, str) else (),
        description or "",
    )


def parse_value_path(text: str) -> tuple[str | int, ...]:
    """``"data.values.0"`` -> ("data", "values", 0); whole numbers index lists."""
    if not text:
        return ()
    return tuple(int(part) if part.isascii() and part.isdigit() else part for part in text.split("."))


# -- decoding --------------------------------------------------------------------------------


def decode(
    device: str, resource: ResourceDef, payload: bytes, content_format: int | None, now: float
) -> list[Decoded]:
    """The points ``payload`` (an answer from ``resource``) gives; raises PayloadError.

    Readings keep the time a SenML pack carries (relative times are taken from ``now``);
    other formats carry none, so their ``ts`` is None (the driver stamps the arrival).
    """
    where = f"device '{device}' resource '{resource.uri_path}'"
    if len(payload) > MAX_PAYLOAD:
        raise PayloadError(f"{where}: payload of {len(payload)} bytes is larger than {MAX_PAYLOAD}")
    try:
        match _effective_format(resource.format, content_format):
            case Format.TEXT:
                return [_text(payload, resource.points[0])]
            case Format.SENML_CBOR:
                return _senml(decode_senml_cbor(payload).records, resource.points, now)
            case Format.SENML_JSON:
                return _senml(decode_senml_json(payload).records, resource.points, now)
            case Format.JSON:
                return _document(_json(payload), resource.points)
            case Format.CBOR:
                return _document(_cbor(payload), resource.points)
            case other:
                raise PayloadError(f"format {other} cannot be decoded")
    except SenmlError as exc:
        raise PayloadError(f"{where}: not SenML as the profile says ({exc})") from None
    except (PayloadError, ValueError) as exc:
        raise PayloadError(f"{where}: {exc}") from None


def _effective_format(fmt: Format, content_format: int | None) -> Format:
    """What the answer is: its Content-Format wins over the profile for the SenML family."""
    by_number = {
        CONTENT_FORMAT_SENML_CBOR: Format.SENML_CBOR,
        CONTENT_FORMAT_SENML_JSON: Format.SENML_JSON,
        CONTENT_FORMAT_JSON: Format.JSON,
        CONTENT_FORMAT_CBOR: Format.CBOR,
        CONTENT_FORMAT_TEXT: Format.TEXT,
    }
    announced = by_number.get(content_format) if content_format is not None else None
    if fmt is Format.SENML:
        if announced in (Format.SENML_CBOR, Format.SENML_JSON):
            return announced
        if content_format is None:
            return Format.SENML_CBOR
        raise PayloadError(
            f"answer has Content-Format {content_format}, the profile expects SenML (110 or 112)"
        )
    if announced is not None and announced is not fmt and content_format is not None:
        raise PayloadError(f"answer has Content-Format {content_format}, the profile expects {fmt}")
    return fmt


def _text(payload: bytes, point: PointMap) -> Decoded:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PayloadError("text payload is not UTF-8") from None
    # "21.5", "21.5 Cel" (a value followed by its unit, as gateways answer text/plain)
    word, _, rest = text.partition(" ")
    unit = rest.strip() or point.unit
    if point.kind == "string":
        return Decoded(point.name, text, None, point.unit)
    if point.kind == "bool":
        return Decoded(point.name, _as_bool(word, point), None, unit)
    try:
        number: int | float = int(word) if word.lstrip("+-").isdigit() and len(word) < 20 else float(word)
    except ValueError:
        raise PayloadError(f"'{_short(text)}' is not a number") from None
    return Decoded(point.name, _checked_number(number, point), None, unit)


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(
            f"not JSON as the profile says ({str(exc)[:120] or 'nested too deeply'})"
        ) from None


def _cbor(payload: bytes) -> Any:
    try:
        return cbor2.loads(payload)
    except Exception as exc:  # noqa: BLE001 - cbor2 raises several types on hostile input
        raise PayloadError(f"not CBOR as the profile says ({str(exc)[:120] or type(exc).__name__})") from None


def _document(document: Any, points: Sequence[PointMap]) -> list[Decoded]:
    out = []
    for point in points:
        value: Any = document
        for step in point.path:
            if isinstance(value, dict) and step in value:
                value = value[step]
            elif isinstance(value, dict) and str(step) in value:
                value = value[str(step)]
            elif isinstance(value, list) and isinstance(step, int) and step < len(value):
                value = value[step]
            else:
                raise PayloadError(f"point '{point.name}': no '{_path_text(point.path)}' in the document")
        out.append(Decoded(point.name, _typed(value, point), None, point.unit))
    return out


def _senml(records: Sequence[Any], points: Sequence[PointMap], now: float) -> list[Decoded]:
    resolved = resolve_times(records, now)
    out = []
    for point in points:
        if point.record is None:
            matches = [r for r in resolved if r.value is not None]
            if len(matches) > 1 and len({r.name for r in matches}) > 1:
                raise PayloadError(
                    f"point '{point.name}': the pack has several records "
                    f"({', '.join(sorted({_short(r.name) for r in matches})[:4])}); "
                    "name one with record = ..."
                )
        else:
            matches = [r for r in resolved if r.name == point.record and r.value is not None]
        if not matches:
            if point.record is None:
                continue  # an empty pack: the point has no value yet
            raise PayloadError(f"point '{point.name}': no record named '{_short(point.record)}' in the pack")
        # SenML may carry several readings of one name: keep them all, in time order
        for record in sorted(matches, key=lambda r: r.time):
            if not math.isfinite(record.time):
                raise PayloadError(f"point '{point.name}': time {record.time} is not a time")
            out.append(
                Decoded(point.name, _typed(record.value, point), record.time, record.unit or point.unit)
            )
    return out


def _typed(value: Any, point: PointMap) -> Value:
    if point.kind == "bool":
        return _as_bool(value, point)
    if point.kind == "string":
        if isinstance(value, str):
            return value
        raise PayloadError(f"point '{point.name}': expected text, got {_short(repr(value))}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"point '{point.name}': expected a number, got {_short(repr(value))}")
    return _checked_number(value, point)


def _checked_number(value: int | float, point: PointMap) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise PayloadError(f"point '{point.name}': {value} is not a number")
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        raise PayloadError(f"point '{point.name}': whole number out of range (64-bit)")
    return value


def _as_bool(value: Any, point: PointMap) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "0", "1"):
        return value.lower() in ("true", "on", "1")
    raise PayloadError(f"point '{point.name}': expected true/false, got {_short(repr(value))}")


def _path_text(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


# -- writes ----------------------------------------------------------------------------------


def encode_write(resource: ResourceDef, point: PointMap, value: Value) -> tuple[bytes, int]:
    """The PUT body and its Content-Format for writing ``value`` to ``point``."""
    match resource.format:
        case Format.TEXT:
            text = (
                ("true" if value else "false")
                if isinstance(value, bool)
                else repr(value)
                if isinstance(value, float)
                else str(value)
            )
            return text.encode(), CONTENT_FORMAT_TEXT
        case Format.JSON:
            return json.dumps(_nest(point.path, value)).encode(), CONTENT_FORMAT_JSON
        case Format.SENML_JSON:
            return json.dumps(
                [_senml_record(point, value, json_labels=True)]
            ).encode(), CONTENT_FORMAT_SENML_JSON
        case Format.SENML | Format.SENML_CBOR:
            return cbor2.dumps([_senml_record(point, value, json_labels=False)]), CONTENT_FORMAT_SENML_CBOR
        case _:
            return cbor2.dumps(_nest(point.path, value)), CONTENT_FORMAT_CBOR


def _nest(path: tuple[str | int, ...], value: Value) -> Any:
    document: Any = value
    for step in reversed(path):
        document = {str(step): document}
    return document


def _senml_record(point: PointMap, value: Value, *, json_labels: bool) -> dict[Any, Any]:
    label = "vb" if isinstance(value, bool) else "vs" if isinstance(value, str) else "v"
    number = {"vb": 4, "vs": 3, "v": 2}[label]
    record: dict[Any, Any] = {("n" if json_labels else 0): point.record or point.name}
    record[label if json_labels else number] = value
    return record
