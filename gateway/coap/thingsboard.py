"""ThingsBoard's CoAP device API as pure functions: paths, telemetry per device, RPC and
shared-attribute messages in, writes and replies out. No sockets; ``thingsboard_uplink``
does the I/O.

Written from ThingsBoard's CoAP device API reference (thingsboard.io/docs/reference/coap-api,
Community Edition 4.x): telemetry ``POST /api/v1/$TOKEN/telemetry`` with
``[{"ts": ms, "values": {...}}]``; server-side RPC by Observe on ``GET /api/v1/$TOKEN/rpc``,
each notification ``{"id": n, "method": ..., "params": ...}``, answered by
``POST /api/v1/$TOKEN/rpc/{id}``; shared-attribute updates by Observe on
``GET /api/v1/$TOKEN/attributes``, each notification a JSON object of changed attributes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..model import Value
from .commands import Command, CommandResult, Read, read_result, requested
from .senml import ReadingLike


def telemetry_path(token: str) -> list[str]:
    return ["api", "v1", token, "telemetry"]


def rpc_path(token: str) -> list[str]:
    return ["api", "v1", token, "rpc"]


def rpc_reply_path(token: str, request_id: int) -> list[str]:
    return ["api", "v1", token, "rpc", str(request_id)]


def attributes_path(token: str) -> list[str]:
    return ["api", "v1", token, "attributes"]


def split_point(point: str) -> tuple[str, str]:
    device, _, name = point.partition("/")
    return device, name


def telemetry_by_device(readings: Sequence[ReadingLike], devices: Iterable[str]) -> dict[str | None, bytes]:
    """One telemetry payload per ThingsBoard device: a device with its own token gets its
    points under their own names (``level``); readings of any other device go to the gateway's
    own device (key ``None``) under ``device/point``. Readings sharing a millisecond share an
    entry; each payload keeps the readings' order."""
    own = set(devices)
    groups: dict[str | None, list[tuple[str, ReadingLike]]] = {}
    for reading in readings:
        device, name = split_point(reading.point)
        if device in own:
            groups.setdefault(device, []).append((name, reading))
        else:
            groups.setdefault(None, []).append((reading.point, reading))
    return {device: _telemetry(items) for device, items in groups.items()}


def _telemetry(items: Sequence[tuple[str, ReadingLike]]) -> bytes:
    entries: list[dict[str, Any]] = []
    by_ts: dict[int, dict[str, Any]] = {}
    for key, reading in items:
        ts = round(reading.ts * 1000)
        values = by_ts.get(ts)
        if values is None:
            values = by_ts[ts] = {}
            entries.append({"ts": ts, "values": values})
        values[key] = _json_value(reading.value)
    return json.dumps(entries, separators=(",", ":"), allow_nan=False).encode()


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def health_telemetry(health: Mapping[str, Any], ts: float, *, max_keys: int = 200) -> bytes:
    """The gateway's health document as one telemetry entry of flat keys
    (``store.last_seq``, ``components.upstreams.tb.lag_readings``...); scalars only."""
    values: dict[str, Any] = {}

    def walk(prefix: str, node: Any, depth: int) -> None:
        if len(values) >= max_keys:
            return
        if isinstance(node, Mapping):
            if depth >= 5:
                return
            for key, child in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), child, depth + 1)
        elif isinstance(node, bool | int | str) or (isinstance(node, float) and math.isfinite(node)):
            values[prefix] = node

    walk("", health, 0)
    return json.dumps([{"ts": round(ts * 1000), "values": values}], separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class RpcRequest:
    """A ThingsBoard RPC request: its id (the reply names it), method and raw params."""

    id: int
    method: str
    params: Any


class MessageError(ValueError):
    """A notification the gateway cannot read; the message says what is wrong."""


def parse_rpc(payload: bytes) -> RpcRequest:
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise MessageError("RPC notification is not JSON") from None
    if not isinstance(body, dict):
        raise MessageError("RPC notification is not a JSON object")
    request_id, method = body.get("id"), body.get("method")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise MessageError("RPC notification has no integer id")
    if not isinstance(method, str):
        raise MessageError(f"RPC {request_id} has no method")
    return RpcRequest(request_id, method, body.get("params"))


def rpc_action(rpc: RpcRequest, device: str, platform: str) -> Command | Read | CommandResult:
    """What an RPC to ``device`` asks for: a write, a read, or (when unreadable) the refusal."""
    return requested(rpc.method, rpc.params, device, platform)


def rpc_reply(result: CommandResult) -> bytes:
    return json.dumps(result.as_json(), separators=(",", ":")).encode()


def read_reply(point: str, value: Value | None, ts: float | None) -> bytes:
    return json.dumps(read_result(point, value, ts), separators=(",", ":")).encode()


def attribute_commands(
    payload: bytes, device: str, platform: str, writable: Iterable[str]
) -> tuple[list[Command], list[str]]:
    """A shared-attribute update: a write for every attribute named like one of the device's
    writable points; the other attribute names are returned (logged, not an error: shared
    attributes also carry configuration the gateway does not act on)."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise MessageError("attribute notification is not JSON") from None
    if not isinstance(body, dict):
        raise MessageError("attribute notification is not a JSON object")
    # ThingsBoard sends {"shared": {...}} on a GET and the bare object on updates.
    if set(body) <= {"shared", "client"} and isinstance(body.get("shared"), dict):
        body = body["shared"]
    wanted = set(writable)
    commands, ignored = [], []
    for key, value in body.items():
        if f"{device}/{key}" in wanted:
            commands.append(Command(f"{device}/{key}", value, platform))
        else:
            ignored.append(key)
    return commands, ignored
