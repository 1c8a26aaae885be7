"""Commands from an upstream platform turned into actuator writes, and their outcomes.

``check`` is sans-IO (is this a writable point, is the value of its kind); ``execute`` runs
a checked command through ``Actuation.write`` so limits, overrides and fail-safes hold, and
turns every outcome into a ``CommandResult`` a platform reply can carry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..actuation import Actuation, LimitError, WriteSkipped
from ..driver import PointSpec, WriteError
from ..model import Value

log = logging.getLogger("gateway.coap.commands")


@dataclass(frozen=True, slots=True)
class Command:
    """Write ``value`` to ``point`` (``device/point``), asked for by ``platform``."""

    point: str
    value: Any
    platform: str


@dataclass(frozen=True, slots=True)
class CommandResult:
    #: written | clamped | ramping | refused (override, limits, min_interval) | invalid | failed
    """How a platform's write ended (written, clamped, refused, ...), as the reply to it says."""

    status: str
    point: str
    value: Value | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("written", "clamped", "ramping")

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "point": self.point}
        if self.value is not None:
            body["value"] = self.value
        if self.message:
            body["error" if not self.ok else "message"] = self.message
        return body


#: command names the gateway answers, on every platform (ThingsBoard RPC method, Hono
#: command name); the body is ``{"point": "level", "value": 40}`` / ``{"point": "level"}``
SET_METHODS = ("setValue", "set")
GET_METHODS = ("getValue", "get")


@dataclass(frozen=True, slots=True)
class Read:
    """``getValue``: answer with the point's latest value."""

    point: str


def requested(method: str, params: Any, device: str, platform: str) -> Command | Read | CommandResult:
    """What a platform's ``method`` with ``params`` for ``device`` asks for: a write, a read,
    or (when it cannot be understood) the result that says why."""
    params = params if isinstance(params, dict) else {}
    name = params.get("point")
    if method not in SET_METHODS + GET_METHODS:
        return CommandResult(
            "invalid",
            f"{device}/",
            message=(
                f"unknown method '{method}': this gateway answers setValue "
                f'{{"point": ..., "value": ...}} and getValue {{"point": ...}}'
            ),
        )
    if not isinstance(name, str) or not name:
        return CommandResult("invalid", f"{device}/", message=f"{method} needs params.point, the point name")
    point = f"{device}/{name}"
    if method in GET_METHODS:
        return Read(point)
    if "value" not in params:
        return CommandResult("invalid", point, message=f"{method} needs params.value")
    return Command(point, params["value"], platform)


def read_result(point: str, value: Value | None, ts: float | None) -> dict[str, Any]:
    if ts is None:
        return {"status": "unknown", "point": point, "error": f"no reading of {point} yet"}
    if isinstance(value, float) and not math.isfinite(value):
        value = repr(value)
    return {"status": "ok", "point": point, "value": value, "ts": round(ts * 1000)}


def check(command: Command, points: Mapping[str, PointSpec]) -> tuple[Value | None, CommandResult | None]:
    """The value to write, or the result that refuses the command before any write."""
    spec = points.get(command.point)
    if spec is None:
        return None, CommandResult(
            "invalid", command.point, message=f"no point '{command.point}' on this gateway"
        )
    if not spec.writable:
        return None, CommandResult("invalid", command.point, message=f"{command.point} is not writable")
    value = command.value
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, int) and value in (0, 1):
            return bool(value), None
    elif spec.kind == "string":
        if isinstance(value, str):
            return value, None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return value, None
    return None, CommandResult(
        "invalid", command.point, message=f"{command.point} takes a {spec.kind}, got {value!r}"
    )


async def execute(actuation: Actuation, points: Mapping[str, PointSpec], command: Command) -> CommandResult:
    """Check and write; never raises for a refused or failed write (the result says why)."""
    value, refused = check(command, points)
    if refused is not None:
        log.info(
            "event=command_refused platform=%s point=%s reason=%r",
            command.platform,
            command.point,
            refused.message,
        )
        return refused
    assert value is not None
    try:
        outcome = await actuation.write(
            command.point,
            value,
            source=f"platform:{command.platform}",
            reason="command from the upstream platform",
        )
    except (WriteSkipped, LimitError) as exc:
        return CommandResult("refused", command.point, value, str(exc))
    except WriteError as exc:
        return CommandResult("failed", command.point, value, str(exc))
    return CommandResult(outcome.result, command.point, outcome.written)
