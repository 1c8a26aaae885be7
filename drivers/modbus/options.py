"""A Modbus device instance's ``[devices.options]``: transport, addressing, timing, profile.

Parsed once into ``ModbusOptions``; bus-wide settings are grouped in ``BusSettings`` so two
devices on one line can be checked for agreement.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from gateway.options import Table as OptionTable
from gateway.wiring import SerialLine

from .constants import DEFAULT_TCP_PORT, TCP_UNIT_ID_MAX, UNIT_ID_MAX, rtu_frame_gap
from .planner import Limits
from .profile import Profile, is_path_reference, load_profile, resolve_profile, unknown_profile_message


class Transport(enum.StrEnum):
    TCP = "tcp"
    RTU = "rtu"
    RTU_OVER_TCP = "rtu_over_tcp"

    @property
    def is_rtu(self) -> bool:
        return self is not Transport.TCP

    @property
    def is_network(self) -> bool:
        return self is not Transport.RTU


PARITIES = {"N": "N", "E": "E", "O": "O", "none": "N", "even": "E", "odd": "O"}
BAUDRATES = (1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200)


@dataclass(frozen=True, slots=True)
class BusSettings:
    """What identifies and configures one line: every device on it must agree."""

    transport: Transport
    host: str = ""
    port: int = DEFAULT_TCP_PORT
    serial_port: str = ""
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    frame_gap: float = 0.0
    connect_timeout: float = 3.0

    @property
    def key(self) -> str:
        """The shared-resource key: one owner per serial port or TCP endpoint."""
        if self.transport is Transport.RTU:
            return f"serial:{self.serial_port}"
        return f"{self.transport}:{self.host}:{self.port}"

    def describe(self) -> str:
        if self.transport is Transport.RTU:
            return f"{self.serial_port}@{self.baudrate}-{self.bytesize}{self.parity}{self.stopbits}"
        return f"{self.transport}://{self.host}:{self.port}"

    def line_settings(self) -> tuple[object, ...]:
        """The settings that must match between devices sharing the line."""
        return (self.transport, self.baudrate, self.parity, self.stopbits, self.bytesize)


@dataclass(frozen=True, slots=True)
class ModbusOptions:
    profile: Profile
    bus: BusSettings
    unit: int
    timeout: float
    limits: Limits
    verify_writes: bool
    backoff_min: float
    backoff_max: float
    failures_to_offline: int

    def serial_line(self) -> SerialLine | None:
        bus = self.bus
        if bus.transport is not Transport.RTU:
            return None
        return SerialLine(
            bus.serial_port, "serial_port", bus.baudrate, bus.bytesize, bus.parity, float(bus.stopbits)
        )


def parse_modbus_options(options: OptionTable, config_dir: Path) -> ModbusOptions | None:
    reference = options.str("profile")
    transport_text = options.str("transport", "tcp", choices=[t.value for t in Transport])
    transport = Transport(transport_text) if transport_text else Transport.TCP

    host = port = serial_port = None
    baudrate, parity, stopbits, bytesize = 9600, "N", 1, 8
    if transport.is_network:
        host = options.str("host")
        port = options.int("port", DEFAULT_TCP_PORT, min=1, max=65535)
    else:
        serial_port = options.str("serial_port")
        baudrate = options.int("baudrate", 9600, min=300, max=921600)
        parity_text = options.str("parity", "N", choices=list(PARITIES))
        parity = PARITIES.get(parity_text or "N", "N")
        stopbits = options.int("stopbits", 1, min=1, max=2)
        bytesize = options.int("bytesize", 8, min=7, max=8)
    for key in (
        ("host", "port")
        if not transport.is_network
        else ("serial_port", "baudrate", "parity", "stopbits", "bytesize")
    ):
        if options.has(key):
            options.seen.add(key)
            options.error(key, f"does not apply to transport '{transport}'")

    unit = options.int("unit", 1, min=0, max=TCP_UNIT_ID_MAX if transport is Transport.TCP else UNIT_ID_MAX)
    timeout = options.duration("timeout", 1.0, min=0.01)
    default_gap = rtu_frame_gap(baudrate or 9600) if transport is Transport.RTU else 0.0
    frame_gap = options.duration("frame_gap", default_gap, min=0.0)
    connect_timeout = options.duration("connect_timeout", 3.0, min=0.01)
    coalesce = options.bool("coalesce", True)
    max_gap = options.int("max_gap", 10, min=0, max=124)
    max_block = options.int("max_block", None, min=1, max=125)
    verify_writes = options.bool("verify_writes", False)
    backoff_min = options.duration("backoff_min", 1.0, min=0.01)
    backoff_max = options.duration("backoff_max", 60.0, min=0.01)
    failures_to_offline = options.int("failures_to_offline", 1, min=1, max=100)
    if backoff_max < backoff_min:
        options.error("backoff_max", f"must be at least backoff_min ({backoff_min:g}s)")

    profile = None
    if reference is not None:
        path = resolve_profile(reference, config_dir)
        if path is None:
            options.error("profile", unknown_profile_message(reference))
        elif is_path_reference(reference) and not _is_file(path):
            options.error("profile", f"profile file '{str(path)[:200]}' does not exist")
        else:
            before = len(options.problems.items)
            profile = load_profile(path, options.problems)
            if profile is None and len(options.problems.items) == before:
                options.error("profile", f"profile '{reference}' could not be read")
    options.finish()
    if profile is None or host is None and serial_port is None:
        return None
    bus = BusSettings(
        transport,
        host or "",
        port or DEFAULT_TCP_PORT,
        serial_port or "",
        baudrate or 9600,
        parity,
        stopbits or 1,
        bytesize or 8,
        frame_gap or 0.0,
        connect_timeout or 3.0,
    )
    limits = Limits(
        max_gap=max_gap if max_gap is not None else 10,
        max_registers=min(max_block or 125, profile.max_registers_per_read),
        max_bits=profile.max_bits_per_read,
        coalesce=bool(coalesce),
    )
    return ModbusOptions(
        profile,
        bus,
        unit if unit is not None else 1,
        timeout or 1.0,
        limits,
        bool(verify_writes),
        backoff_min or 1.0,
        backoff_max or 60.0,
        failures_to_offline or 1,
    )


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name longer than the filesystem allows
        return False
