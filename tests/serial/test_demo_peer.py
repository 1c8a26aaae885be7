"""The demo's simulated PMS5003: frames reach the gateway over a pty, and no socat means no device."""

from __future__ import annotations

import asyncio

from drivers.serial import demo
from gateway.cli.demo import demo_peers, render_site
from gateway.config import load_config
from gateway.service import Service
from tests.conftest import running, wait_until

from .ptys import needs_socat


@needs_socat
def test_demo_peer_feeds_the_rendered_demo_device(site, tmp_path):
    async def scenario():
        async with demo_peers(tmp_path) as values:
            assert values["serial_air_enabled"] == "true"
            rendered = load_config(render_site(tmp_path, values))
            assert rendered.device("air-serial").enabled
            config = site(f"""
                [[devices]]
                name = "air-serial"
                driver = "serial"
                [devices.options]
                port = "{values["serial_air_port"]}"
                protocol = "pms5003"
            """)
            service = Service(config)
            async with running(service):
                await wait_until(lambda: "air-serial/pm2_5" in service.hub.latest, timeout=15)
                assert 2 <= service.hub.latest["air-serial/pm2_5"].value <= 80
        assert not (tmp_path / "serial" / "pms5003").exists()  # socat stopped, links removed

    asyncio.run(scenario())


def test_without_socat_the_demo_device_is_disabled(tmp_path, monkeypatch):
    monkeypatch.setattr(demo.shutil, "which", lambda name: None)

    async def scenario():
        async with demo.pms5003_peer(tmp_path) as values:
            config = load_config(render_site(tmp_path, values))
        assert values["serial_air_enabled"] == "false"
        assert not config.device("air-serial").enabled

    asyncio.run(scenario())
