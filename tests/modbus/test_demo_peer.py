"""The demo's simulated Modbus server: the gateway reads the meter and dims the lamp through it."""

from __future__ import annotations

import asyncio

from drivers.modbus.demo_peer import simulated_modbus
from gateway.service import Service
from tests.conftest import running, wait_until

from .harness import load_site, meter_and_lamp_on_tcp


def test_demo_peer_serves_a_meter_and_a_dimmable_lamp(tmp_path):
    async def scenario():
        async with simulated_modbus(tmp_path) as values:
            port = values["modbus_port"]
            assert "127.0.0.1:" + port in values["announce"]
            service = Service(load_site(tmp_path, meter_and_lamp_on_tcp(port)))
            async with running(service):
                latest = service.hub.latest
                await wait_until(lambda: "meter/frequency" in latest and "lamp/power" in latest)
                assert abs(latest["meter/frequency"].value - 50.0) < 0.1
                assert 220 < latest["meter/voltage_l1"].value < 240
                assert latest["lamp/firmware"].value == "v1.4.2"
                await service.actuation.write("lamp/level", 30, source="api")
                await wait_until(lambda: latest["lamp/power"].value == 36.0, timeout=15)

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_rendered_demo_site_enables_the_modbus_devices_only_with_the_peer(tmp_path):
    from gateway.cli.demo import render_site
    from gateway.config import load_config

    async def scenario():
        async with simulated_modbus(tmp_path) as values:
            with_peer = load_config(
                render_site(
                    tmp_path, {**values, "serial_air_enabled": "false", "serial_air_port": "/dev/null"}
                )
            )
        without = load_config(
            render_site(tmp_path, {"serial_air_enabled": "false", "serial_air_port": "/dev/null"})
        )
        return with_peer, without

    with_peer, without = asyncio.run(scenario())
    assert with_peer.device("cabinet-meter").enabled and with_peer.device("lamp-modbus").enabled
    assert not without.device("cabinet-meter").enabled
