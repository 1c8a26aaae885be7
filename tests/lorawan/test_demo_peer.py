"""The demo site's simulated packet forwarder delivers decodable frames to the demo device."""

import asyncio

from drivers.lorawan import demo
from gateway.cli.demo import render_site
from gateway.config import load_config
from gateway.service import Service
from tests.conftest import running, wait_until


def test_demo_forwarder_feeds_the_demo_site(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "UPLINK_EVERY_S", 0.2)

    async def scenario():
        async with demo.packet_forwarder(tmp_path) as values:
            config = load_config(render_site(tmp_path, {**values, "serial_air_enabled": "false"}))
            bay = config.device("bay-lora")
            assert bay is not None and bay.enabled
            service = Service(config)
            async with running(service):
                await wait_until(lambda: "bay-lora/presence_1" in service.hub.latest, timeout=20)
                await wait_until(
                    lambda: "lorawan-gw-AA555A000000DE30/rx_ok" in service.hub.latest, timeout=20
                )
                assert service.hub.latest["bay-lora/temperature_2"].unit == "°C"

    asyncio.run(scenario())


def test_demo_site_parses_without_the_forwarder(tmp_path):
    config = load_config(render_site(tmp_path, {"serial_air_enabled": "false"}))
    assert config.device("bay-lora") is not None and not config.device("bay-lora").enabled


def test_a_demo_rerun_continues_the_sensor_counter_so_no_uplink_is_refused(tmp_path, monkeypatch):
    """The network server keeps the last counter in the demo's data dir; a re-run whose sensor
    started again at 0 was refused (reason=stale) until it passed the old counter."""
    monkeypatch.setattr(demo, "UPLINK_EVERY_S", 0.2)

    async def run_once(wanted_uplinks: int) -> tuple[int, dict[str, int]]:
        async with demo.packet_forwarder(tmp_path) as values:
            config = load_config(render_site(tmp_path, {**values, "serial_air_enabled": "false"}))
            service = Service(config)
            async with running(service):
                runner = service.devices.runners["bay-lora"]

                def decoded() -> int:
                    driver = runner.driver
                    return driver.health()["counters"].get("decoded", 0) if driver is not None else 0

                await wait_until(lambda: decoded() >= wanted_uplinks, timeout=30)
                driver = runner.driver
                assert driver is not None
                return driver.session.fcnt_up, dict(driver.health()["counters"])

    last_fcnt, _ = asyncio.run(run_once(5))
    assert demo.load_counter(tmp_path / demo.COUNTER_FILE) > last_fcnt
    again_fcnt, counters = asyncio.run(run_once(3))
    assert counters.get("stale", 0) == 0 and counters.get("replay", 0) == 0, counters
    assert again_fcnt > last_fcnt
