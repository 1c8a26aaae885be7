"""Wiring checks across devices: serial ports several devices name, and ports not present.

Options of a driver that opens a serial port offer ``serial_line()``; the checks here need
no knowledge of the driver, so a new serial driver is covered by implementing that method.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .problems import Problems

#: the line settings every device on one port must agree on, as their option keys name them
LINE_SETTINGS = ("baudrate", "bytesize", "parity", "stopbits")
PARITY_NAMES = {"N": "none", "E": "even", "O": "odd", "M": "mark", "S": "space"}


@dataclass(frozen=True, slots=True)
class SerialLine:
    """The serial port a device opens and how; ``path_key`` is the option naming the port."""

    path: str
    path_key: str
    baudrate: int
    bytesize: int
    parity: str  # N E O M S
    stopbits: float
    #: reads whatever arrives (a sensor that sends by itself): such a device needs its own port
    streams: bool = False

    def setting(self, name: str) -> str:
        value = getattr(self, name)
        if name == "parity":
            return PARITY_NAMES.get(str(value), str(value))
        return f"{value:g}" if isinstance(value, float) else str(value)


@runtime_checkable
class OpensSerialPort(Protocol):
    """Implemented by the options of a device that opens a serial port."""

    def serial_line(self) -> SerialLine | None: ...


@dataclass(frozen=True, slots=True)
class WiredDevice:
    """One enabled device that opens a serial port, with the table prefix its errors use."""

    name: str
    driver: str
    prefix: str  # e.g. "devices[2]"
    line: SerialLine


def canonical_port(path: str) -> str:
    """The device node behind ``path`` (a /dev/serial/by-id link) when it exists now."""
    return os.path.realpath(path) if os.path.exists(path) else path


def check_serial_wiring(devices: Sequence[WiredDevice], problems: Problems) -> None:
    """Errors for devices that cannot share the port they name; a warning for each port that is
    not there right now (an adapter may be plugged in later)."""
    by_port: dict[str, list[WiredDevice]] = {}
    missing: dict[str, list[WiredDevice]] = {}
    for device in devices:
        by_port.setdefault(canonical_port(device.line.path), []).append(device)
        if not os.path.exists(device.line.path):
            missing.setdefault(device.line.path, []).append(device)
    for path, users in missing.items():
        names = [f"'{d.name}'" for d in users]
        who = f"device {names[0]}" if len(names) == 1 else f"devices {', '.join(names[:-1])} and {names[-1]}"
        problems.warn(
            f"{users[0].prefix}.options.{users[0].line.path_key}",
            f"{who}: serial port {path} does not exist right now (adapter unplugged?);"
            " the gateway starts and keeps trying to open it",
        )
    for port, users in by_port.items():
        for index, other in enumerate(users[1:], start=1):
            _check_shared(users[0], other, port, problems)
            streaming = next((d for d in users[:index] if d.line.streams), None)
            if other.line.streams and streaming is not None:
                problems.add(
                    f"{other.prefix}.options.{other.line.path_key}",
                    f"device '{other.name}' and device '{streaming.name}' both stream from serial"
                    f" port {_shared_port(streaming, other, port)}; a sensor that sends by itself"
                    " needs a port of its own",
                )


def _check_shared(first: WiredDevice, other: WiredDevice, port: str, problems: Problems) -> None:
    """``other`` uses the port ``first`` opened: same line settings, same driver."""
    where = _shared_port(first, other, port)
    for name in LINE_SETTINGS:
        mine, theirs = other.line.setting(name), first.line.setting(name)
        if mine != theirs:
            problems.add(
                f"{other.prefix}.options.{name}",
                f"device '{other.name}' sets {name} {mine} but device '{first.name}' sets"
                f" {name} {theirs} on the same serial port {where}; devices sharing a"
                f" port must use the same {', '.join(LINE_SETTINGS)}",
            )
    if other.driver != first.driver:
        problems.add(
            f"{other.prefix}.options.{other.line.path_key}",
            f"device '{other.name}' ({other.driver}) and device '{first.name}'"
            f" ({first.driver}) both open serial port {where}; a port serves one"
            " driver only: give each its own port",
        )


def _shared_port(first: WiredDevice, other: WiredDevice, port: str) -> str:
    names = sorted({first.line.path, other.line.path})
    if len(names) == 1 and names[0] == port:
        return port
    return f"{port} (named {' and '.join(names)})"
