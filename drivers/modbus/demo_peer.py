"""The demo's simulated Modbus hardware: a pymodbus TCP server with a meter and a lamp controller.

``gateway demo`` starts it beside the gateway; it listens on a free loopback port and hands
that port to the demo site template as ``{{modbus_port}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

METER_UNIT = 1
LAMP_UNIT = 2
_START_ATTEMPTS = 3
_UPDATE_PERIOD = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _float_registers(value: float) -> list[int]:
    raw = struct.pack(">f", value)
    return [int.from_bytes(raw[0:2], "big"), int.from_bytes(raw[2:4], "big")]


def _device(unit: int) -> Any:
    from pymodbus.simulator import DataType, SimData, SimDevice

    bits = [SimData(0, count=64, values=False, datatype=DataType.BITS)]
    registers = [SimData(0, count=400, values=0, datatype=DataType.REGISTERS)]
    return SimDevice(id=unit, simdata=(bits, list(bits), registers, list(registers)))


async def _simulate(server: Any) -> None:
    """Meter follows a daily-ish load curve; the lamp's power follows the level the gateway writes."""
    context = server.context
    energy = 1523.0
    started = time.monotonic()
    await context.async_setValues(LAMP_UNIT, 6, 0, [100])  # level 100 %
    await context.async_setValues(LAMP_UNIT, 5, 0, [True])  # lamp on
    await context.async_setValues(LAMP_UNIT, 4, 20, [0x7631, 0x2E34, 0x2E32, 0])  # firmware "v1.4.2"
    limit = _float_registers(120.0)
    await context.async_setValues(LAMP_UNIT, 6, 1, [5, limit[1], limit[0]])  # fade 0.5 s, limit (CDAB)
    lamp_wh = 870_000.0
    while True:
        t = time.monotonic() - started
        phases = [230.0 + 2.0 * math.sin(t / 30 + k) for k in range(3)]
        currents = [8.0 + 3.0 * math.sin(t / 45 + k * 2) for k in range(3)]
        powers = [v * i * 0.95 for v, i in zip(phases, currents, strict=True)]
        apparent = [v * i for v, i in zip(phases, currents, strict=True)]
        reactive = [math.sqrt(max(0.0, s * s - p * p)) for s, p in zip(apparent, powers, strict=True)]
        total = sum(powers)
        energy += total * _UPDATE_PERIOD / 3_600_000
        meter = {
            0: phases[0],
            2: phases[1],
            4: phases[2],
            6: currents[0],
            8: currents[1],
            10: currents[2],
            12: powers[0],
            14: powers[1],
            16: powers[2],
            18: apparent[0],
            20: apparent[1],
            22: apparent[2],
            24: reactive[0],
            26: reactive[1],
            28: reactive[2],
            30: 0.95,
            32: 0.95,
            34: 0.95,
            42: sum(phases) / 3,
            46: sum(currents) / 3,
            48: sum(currents),
            52: total,
            56: sum(apparent),
            60: sum(reactive),
            62: 0.95,
            70: 50.0 + 0.03 * math.sin(t / 7),
            72: energy,
            84: total,
            86: max(total, 6500.0),
            200: phases[0] * math.sqrt(3),
            202: phases[1] * math.sqrt(3),
            204: phases[2] * math.sqrt(3),
            206: sum(phases) / 3 * math.sqrt(3),
            224: 0.4,
            342: energy,
        }
        for address, value in meter.items():
            await context.async_setValues(METER_UNIT, 4, address, _float_registers(value))
        level = (await context.async_getValues(LAMP_UNIT, 3, 0, 1))[0]
        lamp_on = (await context.async_getValues(LAMP_UNIT, 1, 0, 1))[0]
        watts = 120.0 * min(level, 100) / 100 if lamp_on else 0.0
        hours = 12_345 + int(t // 3600)
        lamp_wh += watts * _UPDATE_PERIOD / 3600
        wh = int(lamp_wh)
        await context.async_setValues(
            LAMP_UNIT,
            4,
            0,
            [
                round(watts * 10),
                2301,
                round(watts / 0.23),
                215 + round(10 * math.sin(t / 60)),
                hours & 0xFFFF,
                hours >> 16,
                wh & 0xFFFF,
                wh >> 16,
            ],
        )
        await asyncio.sleep(_UPDATE_PERIOD)


@contextlib.asynccontextmanager
async def simulated_modbus(demo_dir: Path) -> AsyncIterator[dict[str, str]]:
    from pymodbus.server import ModbusTcpServer

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    server = None
    port = 0
    for _ in range(_START_ATTEMPTS):  # another program may grab the free port in between
        port = _free_port()
        candidate = ModbusTcpServer([_device(METER_UNIT), _device(LAMP_UNIT)], address=("127.0.0.1", port))
        try:
            await candidate.serve_forever(background=True)
        except RuntimeError:
            continue
        server = candidate
        break
    if server is None:
        raise RuntimeError("the demo Modbus server could not find a free port on 127.0.0.1")
    simulation = asyncio.create_task(_simulate(server), name="demo-modbus-simulation")
    try:
        yield {
            "modbus_port": str(port),
            "modbus_enabled": "true",
            "announce": f"simulated Modbus meter (unit 1) and lamp controller (unit 2) on 127.0.0.1:{port}",
        }
    finally:
        simulation.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await simulation
        await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated
