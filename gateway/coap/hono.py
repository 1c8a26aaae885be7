"""Eclipse Hono's CoAP adapter, gateway side, as pure functions: where each device's
readings go, how the command wait is asked for, how a command arrives in a response and
how its outcome goes back. No sockets; ``hono_uplink`` does the I/O.

Written from the Hono CoAP Adapter user guide (eclipse-hono/hono,
site/documentation/content/user-guide/coap-adapter.md; Hono 2.x documentation, the same
paths as 1.4 onwards): an authenticated gateway publishes *on behalf of* a device with
``PUT /telemetry/${tenantId}/${deviceId}`` and ``PUT /event/${tenantId}/${deviceId}``
(payload passed through, confirmable = at least once, 2.04 when a consumer accepted it,
4.29 / 5.03 back-pressure); it states its readiness for commands with the ``hono-ttd``
query parameter (``POST /event?hono-ttd=N&empty`` waits for a command for any of its
devices); a command arrives as the response: ``location-query`` ``hono-command=<name>``,
``location-path`` ``command_response/${tenantId}/${deviceId}/<request id>`` (a response is
expected) or ``command/${tenantId}/${deviceId}`` (one-way), the payload the command's
input; the outcome goes back with
``PUT /command_response/${tenantId}/${deviceId}/<request id>?hono-cmd-status=<HTTP status>``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..model import Value
from .commands import Command, CommandResult, Read, read_result, requested
from .senml import ReadingLike

#: the point prefix whose readings go as Hono events (on the gateway's own device id)
EVENT_PREFIX = "events/"
#: Hono's default (and the tenant's usual) upper limit for hono-ttd, seconds
DEFAULT_TTD = 60


@dataclass(frozen=True, slots=True)
class Part:
    """One request of a batch: ``endpoint`` is "telemetry" or "event"."""

    endpoint: str
    device: str
    readings: tuple[ReadingLike, ...]

    def path(self, tenant: str) -> list[str]:
        return [self.endpoint, tenant, self.device]


def split_batch(readings: Sequence[ReadingLike], gateway_device: str) -> list[Part]:
    """Each device's readings as telemetry of that device; ``events/...`` readings as events
    of the gateway's own device. Order within each part is the batch's order."""
    groups: dict[tuple[str, str], list[ReadingLike]] = {}
    for reading in readings:
        if reading.point.startswith(EVENT_PREFIX):
            key = ("event", gateway_device)
        else:
            key = ("telemetry", reading.point.split("/", 1)[0])
        groups.setdefault(key, []).append(reading)
    return [Part(endpoint, device, tuple(items)) for (endpoint, device), items in groups.items()]


def command_wait_query(ttd: int) -> list[str]:
    """``hono-ttd`` and ``empty`` (an empty notification: no payload, no event data)."""
    return [f"hono-ttd={ttd}", "empty"]


@dataclass(frozen=True, slots=True)
class HonoCommand:
    """A command Eclipse Hono delivered for a device, with the request id a reply must carry."""

    tenant: str
    device: str
    name: str
    #: None for a one-way command (no response expected)
    request_id: str | None
    payload: bytes
    content_format: int | None


class CommandError(ValueError):
    """A response that holds a command the gateway cannot read."""


def parse_command(
    location_path: Sequence[str],
    location_query: Sequence[str],
    payload: bytes,
    content_format: int | None,
    *,
    tenant: str,
    gateway_device: str,
) -> HonoCommand | None:
    """The command in a response to a request with ``hono-ttd``, or None when there is none
    (the time ran out, the usual answer)."""
    name = None
    for item in location_query:
        key, _, value = item.partition("=")
        if key == "hono-command":
            name = value
    if name is None and not location_path:
        return None
    if not name:
        raise CommandError("command response has no hono-command name")
    path = list(location_path)
    if path[:1] == ["command_response"]:
        rest = path[1:]
        if len(rest) == 3:
            return HonoCommand(rest[0], rest[1], name, rest[2], payload, content_format)
        if len(rest) == 1:  # the gateway's own device
            return HonoCommand(tenant, gateway_device, name, rest[0], payload, content_format)
    elif path[:1] == ["command"]:
        rest = path[1:]
        if len(rest) == 2:
            return HonoCommand(rest[0], rest[1], name, None, payload, content_format)
        if not rest:
            return HonoCommand(tenant, gateway_device, name, None, payload, content_format)
    raise CommandError(
        f"command location-path {'/'.join(path)!r} is neither "
        "command_response/<tenant>/<device>/<id> nor command/<tenant>/<device>"
    )


def command_action(command: HonoCommand, platform: str) -> Command | Read | CommandResult:
    """The command's name is the method (``setValue``, ``getValue``); its JSON payload the
    parameters (``{"point": "level", "value": 40}``)."""
    try:
        params = json.loads(command.payload) if command.payload else {}
    except (ValueError, UnicodeDecodeError):
        return CommandResult("invalid", f"{command.device}/", message="command payload is not JSON")
    return requested(command.name, params, command.device, platform)


def response_path(command: HonoCommand) -> list[str]:
    assert command.request_id is not None
    return ["command_response", command.tenant, command.device, command.request_id]


def response_query(status: int) -> list[str]:
    return [f"hono-cmd-status={status}"]


#: CommandResult.status -> the HTTP status Hono forwards to the application
HTTP_STATUS = {
    "written": 200,
    "clamped": 200,
    "ramping": 202,
    "ok": 200,
    "unknown": 404,
    "invalid": 400,
    "refused": 409,
    "failed": 503,
}


def command_response(result: CommandResult | dict[str, Any]) -> tuple[int, bytes]:
    body = result.as_json() if isinstance(result, CommandResult) else result
    return HTTP_STATUS.get(str(body.get("status")), 500), json.dumps(body, separators=(",", ":")).encode()


def read_response(point: str, value: Value | None, ts: float | None) -> tuple[int, bytes]:
    return command_response(read_result(point, value, ts))
