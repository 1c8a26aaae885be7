"""The Modbus driver inside the running gateway: readings stored, writes through the actuation
path, health, the shipped sample config, and a device whose line settings conflict."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.problems import ConfigError
from gateway.service import Service
from tests.conftest import running, wait_until

from .harness import load_site, meter_and_lamp_on_tcp
from .peers import pymodbus_tcp

SAMPLE = Path(__file__).parents[2] / "drivers" / "modbus" / "sample.toml"


def test_meter_and_lamp_on_one_tcp_gateway_store_readings_and_take_writes(tmp_path):
    async def scenario():
        async with pymodbus_tcp(units=(1, 2)) as (peer, port):
            await peer.set(1, "input_register", 70, [0x4248, 0x0000])
            await peer.set(2, "input_register", 0, [1234])
            service = Service(load_site(tmp_path, meter_and_lamp_on_tcp(port)))
            async with running(service):
                await wait_until(
                    lambda: "meter/frequency" in service.hub.latest and "lamp/power" in service.hub.latest
                )
                await service.actuation.write("lamp/level", 35, source="api")
                assert await peer.get(2, "holding_register", 0, 1) == [35]
                await wait_until(lambda: service.hub.latest["lamp/level"].value == 35)
                bus = service.devices.shared.get("modbus", f"tcp:127.0.0.1:{port}")
                assert sorted(bus.users) == ["lamp", "meter"]
                health = service.devices.health()
                for _ in range(500):  # readings reach the buffer at the next group commit
                    latest = {r.point: r for r in await service.store.latest()}
                    if "meter/frequency" in latest and "lamp/online" in latest:
                        break
                    await asyncio.sleep(0.02)
        assert latest["meter/frequency"].value == 50.0 and latest["meter/frequency"].unit == "Hz"
        assert latest["lamp/power"].value == 123.4
        assert latest["lamp/online"].value is True
        assert health["lamp"]["detail"]["writes"] == 1
        assert health["meter"]["detail"]["requests_per_poll"] == 4

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_sample_config_is_valid(tmp_path):
    target = tmp_path / "sample.toml"
    shutil.copy(SAMPLE, target)
    profiles = SAMPLE.parent / "profiles"
    (tmp_path / "profiles").mkdir()
    for item in profiles.iterdir():
        shutil.copy(item, tmp_path / "profiles" / item.name)
    config = load_config(target, check_data_dir=False)
    names = {d.name for d in config.devices}
    assert {"meter-main", "lamp-1", "lamp-2", "carpark"} <= names
    assert config.device("lamp-1").point("level").writable


def test_conflicting_line_settings_are_a_config_error_naming_both_devices(tmp_path):
    """Caught by `gateway check`, not left to a BusConflict retried for ever at run time."""
    port = tmp_path / "ttyUSB0"
    port.touch()
    body = "".join(
        f"""
[[devices]]
name = "{name}"
driver = "modbus"
interval = "1s"
[devices.options]
profile = "lamp_controller"
transport = "rtu"
serial_port = "{port}"
baudrate = {baud}
unit = {unit}
"""
        for name, baud, unit in (("a", 9600, 1), ("b", 19200, 2))
    )
    with pytest.raises(ConfigError) as raised:
        load_site(tmp_path, body)
    assert [p.key for p in raised.value.problems] == ["devices[1].options.baudrate"]
    assert "device 'b' sets baudrate 19200 but device 'a' sets baudrate 9600" in str(raised.value)
