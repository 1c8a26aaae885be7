"""Builds Modbus driver instances from a real site config, outside a running service.

Lets a test poll and write step by step and read the driver's health between steps.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drivers.modbus import ModbusDriver
from gateway.clock import SystemClock
from gateway.config import load_config
from gateway.driver import DriverContext
from gateway.model import Reading
from gateway.resources import SharedResources
from tests.conftest import SITE_HEADER


class Published:
    def __init__(self) -> None:
        self.readings: list[Reading] = []

    async def __call__(self, batch: Sequence[Reading]) -> None:
        self.readings.extend(batch)


def load_site(directory: Path, body: str, profiles: dict[str, str] | None = None) -> Any:
    for name, text in (profiles or {}).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    site = directory / "gateway.toml"
    site.write_text(textwrap.dedent(SITE_HEADER) + textwrap.dedent(body), encoding="utf-8")
    return load_config(site)


def meter_and_lamp_on_tcp(port: int | str) -> str:
    """Devices `meter` (unit 1, energy_meter) and `lamp` (unit 2, lamp_controller) behind one
    Modbus TCP endpoint on loopback, polled every 100 ms with verified writes."""
    return "".join(
        f"""
[[devices]]
name = "{name}"
driver = "modbus"
interval = "100ms"
[devices.options]
profile = "{profile}"
host = "127.0.0.1"
port = {port}
unit = {unit}
verify_writes = true
"""
        for name, profile, unit in (("meter", "energy_meter", 1), ("lamp", "lamp_controller", 2))
    )


def make_drivers(
    config: Any,
    shared: SharedResources | None = None,
    clock: Any = None,
) -> tuple[dict[str, ModbusDriver], Published]:
    shared = shared or SharedResources()
    clock = clock or SystemClock(assume_synced=True)
    published = Published()
    drivers = {}
    for device in config.devices:
        ctx = DriverContext(
            device=device.name,
            site=config.site,
            clock=clock,
            data_dir=config.site.data_dir,
            config_dir=config.config_dir,
            log=logging.LoggerAdapter(logging.getLogger("gateway.driver.modbus"), {"device": device.name}),
            state=None,  # type: ignore[arg-type]  # the Modbus driver keeps no durable state
            shared=shared,
            publish=published,
        )
        drivers[device.name] = ModbusDriver(device, ctx)
    return drivers, published


def values(readings: Sequence[Reading]) -> dict[str, Any]:
    return {r.point.split("/", 1)[1]: r.value for r in readings}
