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
                await wait_until(lambda: "lorawan-gw-AA555A000000DE30/rx_ok" in service.hub.latest, timeout=20)
                assert service.hub.latest["bay-lora/temperature_2"].unit == "°C"

    asyncio.run(scenario())


def test_demo_site_parses_without_the_forwarder(tmp_path):
    config = load_config(render_site(tmp_path, {"serial_air_enabled": "false"}))
    assert config.device("bay-lora") is not None and not config.device("bay-lora").enabled
