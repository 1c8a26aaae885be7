"""Real Modbus peers for the tests: pymodbus and modbus-tk slaves over TCP and over socat ptys.

Every peer is an async context manager that stops its server, threads and processes on
exit, so no test leaves a port, pty or socat process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

TABLE_SIZE = 1000
# pymodbus function code -> datastore table, for reading back what a client wrote
FC_FOR = {"coil": 1, "discrete_input": 2, "holding_register": 3, "input_register": 4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sim_device(
    unit: int, size: int = TABLE_SIZE, holes: Iterable[tuple[str, int]] = (), action: Any = None
) -> SimDevice:
    """A slave with all four tables 0..size-1; ``holes`` are (table, address) that raise illegal address."""
    holes_by_table: dict[str, set[int]] = {}
    for table, address in holes:
        holes_by_table.setdefault(table, set()).add(address)

    def blocks(table: str, bits: bool) -> list[SimData]:
        kind = DataType.BITS if bits else DataType.REGISTERS
        value: Any = False if bits else 0
        gaps = sorted(holes_by_table.get(table, ()))
        out, start = [], 0
        for gap in [*gaps, size]:
            if gap > start:
                out.append(SimData(start, count=gap - start, values=value, datatype=kind))
            start = gap + 1
        return out

    return SimDevice(
        id=unit,
        simdata=(
            blocks("coil", True),
            blocks("discrete_input", True),
            blocks("holding_register", False),
            blocks("input_register", False),
        ),
        action=action,
    )


@dataclass
class RequestLog:
    """Requests a server saw, by unit id and function code."""

    by_unit: Counter[int] = field(default_factory=Counter)
    by_function: Counter[int] = field(default_factory=Counter)
    total: int = 0
    functions: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    def trace(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            self.arrivals.append(time.monotonic())
            self.total += 1
            self.functions.append(pdu.function_code)
            self.by_unit[pdu.dev_id] += 1
            self.by_function[pdu.function_code] += 1
        return pdu


class PymodbusPeer:
    """A pymodbus server in the test's event loop; values are set and read through its datastore."""

    def __init__(self, server: Any, log: RequestLog):
        self.server = server
        self.log = log

    async def set(self, unit: int, table: str, address: int, values: list[int] | list[bool]) -> None:
        await self.server.context.async_setValues(unit, _set_fc(table), address, list(values))

    async def get(self, unit: int, table: str, address: int, count: int) -> list[int] | list[bool]:
        return list(await self.server.context.async_getValues(unit, FC_FOR[table], address, count))[:count]


def _set_fc(table: str) -> int:
    # The datastore picks its table from the function code that would write it.
    return {"coil": 5, "holding_register": 6, "discrete_input": 2, "input_register": 4}[table]


@contextlib.asynccontextmanager
async def pymodbus_tcp(
    units: Iterable[int] = (1,),
    *,
    framer: FramerType = FramerType.SOCKET,
    holes: Iterable[tuple[str, int]] = (),
    action: Any = None,
) -> AsyncIterator[tuple[PymodbusPeer, int]]:
    port = free_port()
    log = RequestLog()
    holes = list(holes)
    server = ModbusTcpServer(
        [sim_device(u, holes=holes, action=action) for u in units],
        address=("127.0.0.1", port),
        framer=framer,
        trace_pdu=log.trace,
    )
    await server.serve_forever(background=True)
    try:
        yield PymodbusPeer(server, log), port
    finally:
        await server.shutdown()


@contextlib.asynccontextmanager
async def pymodbus_rtu(
    device: str,
    units: Iterable[int] = (1,),
    *,
    baudrate: int = 19200,
) -> AsyncIterator[PymodbusPeer]:
    units = list(units)
    log = RequestLog()
    # A missing unit stays silent, as an absent slave on RS-485 does.
    server = ModbusSerialServer(
        [sim_device(u) for u in units],
        port=device,
        baudrate=baudrate,
        framer=FramerType.RTU,
        ignore_missing_devices=True,
        trace_pdu=log.trace,
        reconnect_delay=0,
    )
    _silence_missing_units(server, set(units))
    await server.serve_forever(background=True)
    try:
        yield PymodbusPeer(server, log)
    finally:
        await server.shutdown()


def _silence_missing_units(server: Any, present: set[int]) -> None:
    # pymodbus 3.16's simulator raises KeyError for an unknown unit, which the server turns
    # into an exception reply; a real absent slave says nothing, so raise what makes it silent.
    from pymodbus.exceptions import NoSuchIdException

    context = server.context
    for name in ("async_getValues", "async_setValues"):
        original = getattr(context, name)

        async def guarded(device_id: int, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if device_id not in present:
                raise NoSuchIdException(f"no unit {device_id}")
            return await _original(device_id, *args, **kwargs)

        setattr(context, name, guarded)


class ModbusTkPeer:
    """A modbus-tk slave (an independent implementation) running in its own threads."""

    def __init__(self, server: Any):
        self.server = server

    def slave(self, unit: int) -> Any:
        return self.server.get_slave(unit)

    async def set(self, unit: int, table: str, address: int, values: list[int] | list[bool]) -> None:
        self.slave(unit).set_values(table, address, [int(v) for v in values])

    async def get(self, unit: int, table: str, address: int, count: int) -> list[int] | list[bool]:
        return list(self.slave(unit).get_values(table, address, count))


def _tk_slaves(server: Any, units: Iterable[int]) -> None:
    from modbus_tk import defines

    for unit in units:
        slave = server.add_slave(unit)
        slave.add_block("coil", defines.COILS, 0, TABLE_SIZE)
        slave.add_block("discrete_input", defines.DISCRETE_INPUTS, 0, TABLE_SIZE)
        slave.add_block("holding_register", defines.HOLDING_REGISTERS, 0, TABLE_SIZE)
        slave.add_block("input_register", defines.ANALOG_INPUTS, 0, TABLE_SIZE)


@contextlib.asynccontextmanager
async def modbus_tk_tcp(units: Iterable[int] = (1,)) -> AsyncIterator[tuple[ModbusTkPeer, int]]:
    from modbus_tk import modbus_tcp

    port = free_port()
    server = modbus_tcp.TcpServer(port=port, address="127.0.0.1", timeout_in_sec=0.2)
    _tk_slaves(server, units)
    server.start()
    try:
        yield ModbusTkPeer(server), port
    finally:
        await asyncio.to_thread(server.stop)


@contextlib.asynccontextmanager
async def modbus_tk_rtu(
    device: str,
    units: Iterable[int] = (1,),
    baudrate: int = 19200,
) -> AsyncIterator[ModbusTkPeer]:
    import serial
    from modbus_tk import modbus_rtu

    port = serial.Serial(device, baudrate=baudrate)
    server = modbus_rtu.RtuServer(port, error_on_missing_slave=False)
    _tk_slaves(server, units)
    server.start()
    try:
        yield ModbusTkPeer(server)
    finally:
        await asyncio.to_thread(server.stop)
        server.close()


@dataclass
class PtyPair:
    master: str  # the gateway's end
    slave: str  # the peer's end
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def socat_available() -> bool:
    return shutil.which("socat") is not None


def start_pty_pair(directory: Path) -> PtyPair:
    """Two linked pseudo-terminals, like a USB RS-485 adapter wired to a slave."""
    gateway_end, peer_end = directory / "ttyGW", directory / "ttyPEER"
    process = subprocess.Popen(
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={gateway_end}", f"pty,raw,echo=0,link={peer_end}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pair = PtyPair(str(gateway_end), str(peer_end), process)
    deadline = time.monotonic() + 10
    while not (gateway_end.exists() and peer_end.exists()):
        if process.poll() is not None or time.monotonic() > deadline:
            pair.stop()
            raise RuntimeError("socat did not create the pty pair")
        time.sleep(0.02)
    return pair


@contextlib.asynccontextmanager
async def pty_pair(directory: Path) -> AsyncIterator[PtyPair]:
    pair = start_pty_pair(directory)
    try:
        yield pair
    finally:
        pair.stop()


def thread_count() -> int:
    return threading.active_count()


def no_socat_left(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
