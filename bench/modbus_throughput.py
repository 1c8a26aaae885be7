"""Modbus bench: points/s polled from a local Modbus TCP server, and gateway CPU per 1,000 points/s.

The server runs in its own process so only the gateway's CPU is measured. Part one polls
energy meters back to back through the driver (saturation); part two runs the real service
(store included) at a fixed rate of about 1,000 points/s. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UNITS = 10
POINTS_PER_METER = 46  # 45 measurements + online


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(port: int) -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    devices = []
    for unit in range(1, UNITS + 1):
        bits = [SimData(0, count=1000, values=False, datatype=DataType.BITS)]
        regs = [SimData(0, count=1000, values=0x4348, datatype=DataType.REGISTERS)]
        devices.append(SimDevice(id=unit, simdata=(bits, list(bits), regs, list(regs))))
    server = ModbusTcpServer(devices, address=("127.0.0.1", port))
    await server.serve_forever()


def start_server(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("Modbus server did not start")


def site(directory: Path, port: int, interval: float, meters: int) -> Path:
    body = "".join(
        f"""
[[devices]]
name = "meter{u}"
driver = "modbus"
interval = "{interval}s"
[devices.options]
profile = "energy_meter"
host = "127.0.0.1"
port = {port}
unit = {u}
"""
        for u in range(1, meters + 1)
    )
    path = directory / "site.toml"
    path.write_text(
        f'[gateway]\nid = "bench"\ndata_dir = "data"\n[store]\nflush_interval = "200ms"\n{body}',
        encoding="utf-8",
    )
    return path


async def saturation(port: int, directory: Path, seconds: float) -> dict[str, float]:
    from drivers.modbus import ModbusDriver
    from gateway.clock import SystemClock
    from gateway.config import load_config
    from gateway.driver import DriverContext
    from gateway.resources import SharedResources

    config = load_config(site(directory, port, 1.0, UNITS))
    shared = SharedResources()

    async def publish(batch: object) -> None:
        return None

    drivers = []
    for device in config.devices:
        ctx = DriverContext(
            device=device.name,
            site=config.site,
            clock=SystemClock(True),
            data_dir=directory,
            config_dir=directory,
            log=logging.LoggerAdapter(logging.getLogger("bench"), {}),
            state=None,
            shared=shared,
            publish=publish,
        )  # type: ignore[arg-type]
        driver = ModbusDriver(device, ctx)
        await driver.open()
        drivers.append(driver)
    points = 0

    async def hammer(driver: ModbusDriver, stop_at: float) -> None:
        nonlocal points
        while time.monotonic() < stop_at:
            got = len(await driver.poll())  # add after the await: the drivers run concurrently
            points += got

    await asyncio.gather(*(d.poll() for d in drivers))  # connect, warm up
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(hammer(d, t0 + seconds) for d in drivers))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    for d in drivers:
        await d.close()
    rate = points / wall
    return {
        "points_per_s": round(rate),
        "requests_per_s": round(rate / POINTS_PER_METER * 4),
        "cpu_s_per_s": round(cpu / wall, 3),
        "cpu_s_per_1000_points_per_s": round(cpu / wall / (rate / 1000), 4),
    }


async def steady(port: int, directory: Path, seconds: float) -> dict[str, float]:
    from gateway.config import load_config
    from gateway.service import Service

    # 10 meters x 45 points every 0.45 s = 1,000 points/s (plus the online points on change)
    config = load_config(site(directory, port, 0.45, UNITS))
    service = Service(config)
    task = asyncio.create_task(service.run())
    await service.wait_ready()
    await asyncio.sleep(2.0)
    seq0, cpu0, t0 = service.store.last_seq, time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    seq1, cpu, wall = service.store.last_seq, time.process_time() - cpu0, time.monotonic() - t0
    service.stop()
    await task
    rate = (seq1 - seq0) / wall
    return {
        "points_per_s": round(rate),
        "cpu_s_per_s": round(cpu / wall, 3),
        "cpu_s_per_1000_points_per_s": round(cpu / wall / (rate / 1000), 4),
    }


async def main(seconds: float) -> dict[str, object]:
    port = free_port()
    server = start_server(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sat = await saturation(port, Path(tmp), seconds)
        with tempfile.TemporaryDirectory() as tmp:
            fixed = await steady(port, Path(tmp), seconds)
    finally:
        server.terminate()
        server.wait(10)
    return {
        "server": f"pymodbus TCP in a separate process, {UNITS} units, loopback",
        "profile": "energy_meter (45 float32 points, 4 requests per poll)",
        "saturation_driver_only": sat,
        "service_at_1000_points_per_s_with_store": fixed,
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
    else:
        logging.basicConfig(level=logging.ERROR)
        print(json.dumps(asyncio.run(main(args.seconds)), indent=2))
