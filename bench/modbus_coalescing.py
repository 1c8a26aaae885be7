"""Modbus bench: requests per poll cycle with and without block coalescing, per shipped profile.

Counts the plan and, to show the plan is what goes on the wire, the requests a local
pymodbus server actually receives for one poll each way. Prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymodbus.server import ModbusTcpServer  # noqa: E402
from pymodbus.simulator import DataType, SimData, SimDevice  # noqa: E402

from drivers.modbus import ModbusDriver  # noqa: E402
from drivers.modbus.planner import plan_reads  # noqa: E402
from drivers.modbus.profile import builtin_profiles  # noqa: E402
from gateway.clock import SystemClock  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.driver import DriverContext  # noqa: E402
from gateway.resources import SharedResources  # noqa: E402

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def device_tables() -> SimDevice:
    bits = [SimData(0, count=1000, values=False, datatype=DataType.BITS)]
    regs = [SimData(0, count=1000, values=0, datatype=DataType.REGISTERS)]
    return SimDevice(id=1, simdata=(bits, list(bits), regs, list(regs)))


async def wire_requests(profile: str, coalesce: bool, directory: Path) -> int:
    seen = 0

    def count(sending: bool, pdu: object) -> object:
        nonlocal seen
        seen += 0 if sending else 1
        return pdu

    port = free_port()
    server = ModbusTcpServer([device_tables()], address=("127.0.0.1", port), trace_pdu=count)
    await server.serve_forever(background=True)
    try:
        site = directory / f"{profile}-{coalesce}.toml"
        site.write_text(
            f"""
[gateway]
id = "bench"
data_dir = "data"
[[devices]]
name = "dev"
driver = "modbus"
[devices.options]
profile = "{profile}"
host = "127.0.0.1"
port = {port}
coalesce = {str(coalesce).lower()}
""",
            encoding="utf-8",
        )
        config = load_config(site, check_data_dir=False)
        device = config.devices[0]
        shared = SharedResources()

        async def publish(batch: object) -> None:
            return None

        ctx = DriverContext(
            device="dev",
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
        try:
            await driver.poll()
        finally:
            await driver.close()
        return seen
    finally:
        await server.shutdown()


async def main() -> dict[str, object]:
    from drivers.modbus.planner import Limits
    from drivers.modbus.profile import load_profile
    from gateway.problems import Problems

    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in sorted(builtin_profiles().items()):
            profile = load_profile(path, Problems(str(path)))
            assert profile is not None
            spans = [p.span() for p in profile.points]
            limits = Limits()
            planned = len(plan_reads(spans, limits))
            naive = len(plan_reads(spans, replace(limits, coalesce=False)))
            on_wire = await wire_requests(name, True, Path(tmp))
            on_wire_naive = await wire_requests(name, False, Path(tmp))
            out[name] = {
                "points": len(spans),
                "requests_per_cycle_coalesced": planned,
                "requests_per_cycle_one_per_point": naive,
                "reduction": round(naive / planned, 1),
                "server_counted_coalesced": on_wire,
                "server_counted_one_per_point": on_wire_naive,
            }
    return out


if __name__ == "__main__":
    result = asyncio.run(main())
    result["goal"] = "energy_meter reduction >= 10x"
    print(json.dumps(result, indent=2))
