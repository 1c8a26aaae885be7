"""Per-protocol glue: the parser, the points, the set-up commands, the poll query and built-in writes.

Pure functions of the options, so the driver stays one code path for every protocol.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.driver import PointSpec
from gateway.model import Value

from . import nmea_constants as NC
from . import plantower, sds011
from . import plantower_constants as PC
from . import sds011_constants as SC
from .events import Event, Frame, Parser
from .line import LineParser
from .options import SerialOptions

RUNNING_POINT = "running"


@dataclass(frozen=True, slots=True)
class BuiltinWrite:
    """The frame that carries a write and how to recognise the device's confirmation (if any)."""

    request: bytes
    confirms: Callable[[Event], bool] | None = None


def make_parser(options: SerialOptions) -> Parser:
    if options.protocol in ("pms5003", "pms7003"):
        return plantower.PlantowerParser()
    if options.protocol == "sds011":
        return sds011.Sds011Parser()
    if options.protocol == "nmea":
        from .nmea import NmeaParser

        return NmeaParser(options.sentences)
    assert options.line is not None
    return LineParser(options.line)


def declare_points(options: SerialOptions) -> list[PointSpec]:
    if options.protocol in ("pms5003", "pms7003"):
        return [
            *(PointSpec(name, unit) for name, unit in PC.DATA_FIELDS),
            PointSpec(RUNNING_POINT, None, "bool", writable=True, description="fan and laser on"),
        ]
    if options.protocol == "sds011":
        return [
            PointSpec("pm2_5", SC.MASS_UNIT),
            PointSpec("pm10", SC.MASS_UNIT),
            PointSpec(RUNNING_POINT, None, "bool", writable=True, description="fan and laser on"),
        ]
    if options.protocol == "nmea":
        names: list[str] = []
        for sentence in options.sentences:
            names += [n for n in NC.SENTENCE_POINTS[sentence] if n not in names]
        return [PointSpec(n, NC.POINTS[n][0], NC.POINTS[n][1]) for n in names]
    assert options.line is not None
    from .line_constants import POINT_KINDS

    points = [PointSpec(f.name, f.unit, POINT_KINDS[f.type]) for f in options.line.fields]
    points += [PointSpec(c.point, c.unit, c.kind, writable=True) for c in options.commands]
    return points


def setup_commands(options: SerialOptions) -> list[bytes]:
    """Frames sent after every open so a sensor that lost power is back in the configured mode."""
    if not options.configure_on_open:
        return []
    polled = options.polled
    if options.protocol in ("pms5003", "pms7003"):
        return [plantower.command(PC.CMD_CHANGE_MODE, PC.MODE_PASSIVE if polled else PC.MODE_ACTIVE)]
    if options.protocol == "sds011":
        out = [sds011.set_reporting_mode(query=polled)]
        if options.working_period is not None:
            out.append(sds011.set_working_period(options.working_period))
        return out
    return []


def poll_request(options: SerialOptions) -> bytes | None:
    if options.protocol in ("pms5003", "pms7003"):
        return plantower.command(PC.CMD_READ_PASSIVE)
    if options.protocol == "sds011":
        return sds011.query_data()
    return options.poll_command


def is_reading_frame(event: Event) -> bool:
    return isinstance(event, Frame) and bool(event.samples)


def builtin_write(options: SerialOptions, point: str, value: Value) -> BuiltinWrite | None:
    """The command for a protocol's own writable point, or None when ``point`` is not one."""
    if point != RUNNING_POINT or options.protocol not in ("pms5003", "pms7003", "sds011"):
        return None
    if not isinstance(value, bool):
        raise ValueError(f"expects true or false, got {value!r}")
    if options.protocol == "sds011":

        def confirms(event: Event) -> bool:
            return isinstance(event, Frame) and event.kind == "reply" and event.command == SC.SUB_SLEEP_WORK

        return BuiltinWrite(sds011.set_working(value), confirms)
    # The PMS answers sleep/wake inconsistently across firmware versions: do not wait for it.
    return BuiltinWrite(plantower.command(PC.CMD_SLEEP_SET, PC.WAKEUP if value else PC.SLEEP))


def reply_matcher(expect: re.Pattern[str] | None) -> Callable[[Event], bool] | None:
    if expect is None:
        return None

    def matches(event: Event) -> bool:
        text = getattr(event, "text", None)
        return isinstance(text, str) and expect.search(text) is not None

    return matches
