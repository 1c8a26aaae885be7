"""The serial driver's ``[devices.options]``: validated once into a frozen ``SerialOptions``.

Every key is checked here (types, ranges, regexes, templates) so a technician sees all
mistakes at ``gateway check`` time, each naming its key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gateway.model import is_valid_name_part
from gateway.options import Table
from gateway.wiring import SerialLine

from . import line_constants as LC
from . import nmea_constants as NC
from .commands import CommandTemplate, TemplateError, check_template
from .line import LineField, LineRules

PROTOCOLS = ("pms5003", "pms7003", "sds011", "nmea", "line")
MODES = ("stream", "poll")
PARITIES = {"none": "N", "even": "E", "odd": "O", "mark": "M", "space": "S"}
DEFAULT_BAUDRATE = {"pms5003": 9600, "pms7003": 9600, "sds011": 9600, "nmea": 9600, "line": 9600}
#: protocols whose mode can be "poll" without a poll_command (the protocol knows the query)
BUILTIN_QUERY = ("pms5003", "pms7003", "sds011")


@dataclass(frozen=True, slots=True)
class PortOptions:
    """What identifies and configures the physical port; devices sharing a port must agree."""

    port: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    exclusive: bool = True
    reconnect_min: float = 1.0
    reconnect_max: float = 30.0

    def describe(self) -> str:
        stop = int(self.stopbits) if self.stopbits != 1.5 else 1.5
        return f"{self.baudrate} {self.bytesize}{self.parity}{stop}"


@dataclass(frozen=True, slots=True)
class SerialOptions:
    port: PortOptions
    protocol: str
    mode: str
    response_timeout: float
    configure_on_open: bool
    sentences: tuple[str, ...] = NC.DEFAULT_SENTENCES
    line: LineRules | None = None
    poll_command: bytes | None = None
    commands: tuple[CommandTemplate, ...] = ()
    working_period: int | None = None
    reopen_after_silence: float | None = None

    @property
    def polled(self) -> bool:
        return self.mode == "poll"

    @property
    def listens(self) -> bool:
        """True when the device sends by itself; a command-only device (a sign) just answers."""
        return not self.polled and (self.line is None or bool(self.line.patterns))

    def serial_line(self) -> SerialLine:
        p = self.port
        return SerialLine(
            p.port, "port", p.baudrate, p.bytesize, p.parity, float(p.stopbits), streams=self.listens
        )


def _regex(table: Table, key: str, text: object) -> re.Pattern[str] | None:
    if not isinstance(text, str):
        table.error(key, f"must be a regular expression string, got {text!r}")
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        table.error(key, f"invalid regular expression {text!r}: {exc}")
        return None


def _regex_list(table: Table, key: str) -> list[re.Pattern[str]]:
    raw = table.list(key, [])
    out = []
    for index, item in enumerate(raw or []):
        pattern = _regex(table, f"{key}[{index}]", item)
        if pattern is not None:
            out.append(pattern)
    return out


def _text_bytes(table: Table, key: str, text: str | None, encoding: str) -> bytes | None:
    if text is None:
        return None
    try:
        return text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        table.error(key, f"cannot be sent as {encoding}")
        return None


def parse_serial_options(options: Table, config_dir: Path) -> SerialOptions | None:
    port_name = options.str("port")
    protocol = options.str("protocol", choices=PROTOCOLS)
    baudrate = options.int("baudrate", DEFAULT_BAUDRATE.get(protocol or "", 9600), min=50, max=4_000_000)
    bytesize = options.int("bytesize", 8, min=5, max=8)
    parity = options.str("parity", "none", choices=tuple(PARITIES))
    stopbits = options.float("stopbits", 1.0)
    if stopbits not in (1.0, 1.5, 2.0):
        options.error("stopbits", f"must be 1, 1.5 or 2, got {stopbits}")
    exclusive = options.bool("exclusive", True)
    reconnect_min = options.duration("reconnect_min", 1.0, min=0.01)
    reconnect_max = options.duration("reconnect_max", 30.0, min=0.01)
    if reconnect_max < reconnect_min:
        options.error("reconnect_max", f"must be at least reconnect_min ({reconnect_min:g}s)")
    poll_command_text = options.str("poll_command", None)
    mode = options.str("mode", "poll" if poll_command_text is not None else "stream", choices=MODES)
    response_timeout = options.duration("response_timeout", 2.0, min=0.01)
    configure_on_open = options.bool("configure_on_open", True)
    reopen_after_silence = options.duration("reopen_after_silence", None, min=0.1)
    encoding = options.str("encoding", LC.DEFAULT_ENCODING)
    try:
        "".encode(encoding)
    except LookupError:
        options.error("encoding", f"unknown text encoding '{encoding}'")
        encoding = LC.DEFAULT_ENCODING

    sentences: tuple[str, ...] = NC.DEFAULT_SENTENCES
    working_period = None
    line_rules = None
    commands: tuple[CommandTemplate, ...] = ()
    if protocol == "nmea":
        chosen = options.list("sentences", list(NC.DEFAULT_SENTENCES))
        for index, name in enumerate(chosen or []):
            if name not in NC.SUPPORTED_SENTENCES:
                options.error(
                    f"sentences[{index}]",
                    f"'{name}' is not a supported sentence; supported: {', '.join(NC.SUPPORTED_SENTENCES)}",
                )
        sentences = tuple(n for n in chosen or [] if n in NC.SUPPORTED_SENTENCES)
        if not sentences:
            options.error("sentences", "name at least one sentence to decode")
        if mode == "poll":
            options.error("mode", 'NMEA receivers send by themselves; use mode = "stream"')
    if protocol == "sds011":
        working_period = options.int("working_period", None, min=0, max=30)
    if protocol == "line":
        line_rules = _parse_line(options, encoding or LC.DEFAULT_ENCODING)
        commands = _parse_commands(options, encoding or LC.DEFAULT_ENCODING)
        if not any(options.has(key) for key in ("pattern", "patterns", "commands")):
            options.error(
                "patterns",
                "a line device needs patterns to read, [[devices.options.commands]] to write, or both",
            )
        if mode == "poll" and poll_command_text is None:
            options.error("poll_command", "a polled line device needs the command that asks for a reading")
    elif poll_command_text is not None:
        options.error("poll_command", f"the {protocol} protocol knows its own query; remove poll_command")
    poll_command = _text_bytes(options, "poll_command", poll_command_text, encoding or "ascii")
    options.finish()
    if port_name is None or protocol is None or mode is None:
        return None
    port = PortOptions(
        port_name,
        baudrate or 9600,
        bytesize or 8,
        PARITIES.get(parity or "none", "N"),
        stopbits or 1.0,
        bool(exclusive),
        reconnect_min or 1.0,
        reconnect_max or 30.0,
    )
    return SerialOptions(
        port,
        protocol,
        mode,
        response_timeout or 2.0,
        bool(configure_on_open),
        sentences,
        line_rules,
        poll_command,
        commands,
        working_period,
        reopen_after_silence,
    )


def _parse_line(options: Table, encoding: str) -> LineRules | None:
    patterns = _regex_list(options, "patterns")
    if options.has("pattern"):
        single = _regex(options, "pattern", options.str("pattern"))
        if single is not None:
            patterns.insert(0, single)
    ignore = _regex_list(options, "ignore")
    terminator = options.str("terminator", LC.DEFAULT_TERMINATOR)
    max_line = options.int("max_line", LC.DEFAULT_MAX_LINE, min=8, max=65536)
    if terminator == "":
        options.error("terminator", "must not be empty")
    groups = {name for p in patterns for name in p.groupindex}
    fields = []
    seen: set[str] = set()
    for table in options.tables("points"):
        name = table.str("name")
        group = table.str("group", name)
        kind = table.str("type", "float", choices=LC.VALUE_TYPES)
        scale = table.float("scale", 1.0)
        offset = table.float("offset", 0.0)
        unit = table.str("unit", None)
        true_values = table.list("true_values", list(LC.DEFAULT_TRUE_VALUES))
        false_values = table.list("false_values", list(LC.DEFAULT_FALSE_VALUES))
        table.finish()
        if name is None:
            continue
        if not is_valid_name_part(name):
            table.error("name", f"'{name}' may use letters, digits, '_', '-' and '.' only")
        if name in seen:
            table.error("name", f"point '{name}' is declared twice")
        seen.add(name)
        if group is not None and patterns and group not in groups:
            table.error(
                "group",
                f"no pattern has a named group '(?P<{group}>...)'"
                f"; groups: {', '.join(sorted(groups)) or 'none'}",
            )
        if kind in ("string", "bool") and (scale != 1.0 or offset != 0.0):
            table.error("scale", f"scale and offset apply to numbers, not to type '{kind}'")
        fields.append(
            LineField(
                name,
                group or name,
                kind or "float",
                scale,
                offset,
                unit,
                tuple(str(v).casefold() for v in true_values or ()),
                tuple(str(v).casefold() for v in false_values or ()),
            )
        )
    for group in sorted(groups - {f.group for f in fields}):
        options.error(
            "points",
            f"pattern group '{group}' is not mapped to a point; add"
            f' [[devices.options.points]] name = "{group}"',
        )
    if not terminator:
        return None
    try:
        term = terminator.encode(encoding)
    except UnicodeEncodeError:
        options.error("terminator", f"cannot be sent as {encoding}")
        return None
    return LineRules(
        tuple(patterns), tuple(fields), tuple(ignore), term, encoding, max_line or LC.DEFAULT_MAX_LINE
    )


def _parse_commands(options: Table, encoding: str) -> tuple[CommandTemplate, ...]:
    out = []
    for table in options.tables("commands"):
        point = table.str("point")
        template = table.str("template")
        kind = table.str("kind", "string", choices=("string", "number", "bool"))
        accept = table.str("accept", None)
        expect = table.str("expect", None)
        error = table.str("error", None)
        timeout = table.duration("timeout", 2.0, min=0.01)
        true_text = table.str("true_text", "ON")
        false_text = table.str("false_text", "OFF")
        unit = table.str("unit", None)
        table.finish()
        if point is not None and not is_valid_name_part(point):
            table.error("point", f"'{point}' may use letters, digits, '_', '-' and '.' only")
        if template is not None:
            try:
                check_template(template)
            except TemplateError as exc:
                table.error("template", str(exc))
                template = None
        patterns = {
            key: _regex(table, key, text) if text is not None else None
            for key, text in (("accept", accept), ("expect", expect), ("error", error))
        }
        if point is not None and template is not None:
            out.append(
                CommandTemplate(
                    point,
                    template,
                    kind or "string",
                    patterns["accept"],
                    patterns["expect"],
                    patterns["error"],
                    timeout or 2.0,
                    encoding,
                    true_text or "ON",
                    false_text or "OFF",
                    unit,
                )
            )
    return tuple(out)
