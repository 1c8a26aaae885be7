"""CoAP sensors read through profiles: an aiocoap server (SenML Observe with Max-Age, a polled
CBOR document, writes) and libcoap's coap-server-notls (plain text, Observe, PUT)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cbor2
import pytest

from gateway.config import load_config
from gateway.service import Service
from tests.conftest import running, wait_until, write_site

from .helpers import COAP_CLIENT, COAP_SERVER, aiocoap_sensor, free_port, run_tool

NODE_PROFILE = """
[profile]
name = "test-node"
[[resources]]
path = "3303/0"
format = "senml"
[[resources.points]]
name = "temperature"
record = "/3303/0/5700"
[[resources]]
path = "probe"
format = "cbor"
observe = false
[[resources.points]]
name = "moisture"
path = "probe.vwc"
unit = "%"
[[resources.points]]
name = "level"
path = "set.level"
writable = true
"""


def node_site(tmp_path: Path, port: int, extra: str = "", profile: str = NODE_PROFILE) -> Service:
    (tmp_path / "node.toml").write_text(profile)
    return Service(
        load_config(
            write_site(
                tmp_path,
                f"""
[[devices]]
name = "node"
driver = "coap"
[devices.options]
uri = "coap://127.0.0.1:{port}"
profile = "node.toml"
poll_interval = "100ms"
timeout = "1s"
retry_min = "100ms"
retry_max = "500ms"
{extra}
""",
            )
        )
    )


def latest(service: Service, point: str) -> object:
    reading = service.hub.latest.get(point)
    return None if reading is None else reading.value


def test_aiocoap_sensor_observed_polled_and_written(tmp_path):
    port = free_port()
    origin = time.time() - 30.0

    async def scenario() -> None:
        async with aiocoap_sensor(port) as (sensor, probe):
            sensor.set(21.25, origin)
            service = node_site(tmp_path, port)
            async with running(service):
                await wait_until(lambda: latest(service, "node/temperature") == 21.25)
                await wait_until(lambda: latest(service, "node/moisture") == 31.5)
                reading = service.hub.latest["node/temperature"]
                assert reading.ts == origin and reading.unit == "Cel"  # the sensor's own time and unit
                assert latest(service, "node/online") is True

                # a notification, not a re-poll: Max-Age is 60 s, so only Observe brings it this soon
                sensor.set(22.5, origin + 1)
                await wait_until(lambda: latest(service, "node/temperature") == 22.5)

                # hostile bytes: counted and logged with device and resource, the driver keeps going
                sensor.garbage = True
                sensor.set(0.0, origin + 2)
                runner = service.devices.runners["node"]
                await wait_until(
                    lambda: runner.health_report()["detail"]["counters"].get("bad_payloads", 0) >= 1
                )
                assert "device 'node' resource '/3303/0'" in runner.health_report()["last_error"]
                sensor.garbage = False
                sensor.set(23.0, origin + 3)
                await wait_until(lambda: latest(service, "node/temperature") == 23.0)
                assert runner.health.restarts == 0

                # a write goes out as the profile's CBOR document; the next poll reads it back
                await service.actuation.write("node/level", 40, source="test")
                assert cbor2.loads(probe.puts[-1]) == {"set": {"level": 40}}
                await wait_until(lambda: latest(service, "node/level") == 40)

    asyncio.run(scenario())


def test_sensor_restart_is_noticed_within_max_age_and_re_registered(tmp_path):
    port = free_port()

    asyncio.run(_restart_scenario(tmp_path, port))


async def _restart_scenario(tmp_path: Path, port: int) -> None:
    # only the observed resource: the polled one's answers carry no Max-Age (60 s by default)
    observed_only = NODE_PROFILE.split('[[resources]]\npath = "probe"')[0]
    service = node_site(tmp_path, port, 'max_age_floor = "0s"\nfreshness_grace = "200ms"', observed_only)
    async with running(service):
        async with aiocoap_sensor(port, max_age=1) as (sensor, _):
            sensor.set(10.0, time.time())
            await wait_until(lambda: latest(service, "node/temperature") == 10.0)
            await wait_until(lambda: latest(service, "node/online") is True)
        # the sensor is gone without a word: within its Max-Age (1 s + grace) the peer is offline
        await wait_until(lambda: latest(service, "node/online") is False, timeout=10)
        runner = service.devices.runners["node"]
        assert runner.health_report()["detail"]["counters"]["reregistrations"] >= 1
        # it comes back as a new process on the same port, knowing nothing of the old
        # registration; the driver registers again by itself
        async with aiocoap_sensor(port, max_age=1) as (sensor, _):
            sensor.set(11.0, time.time())
            await wait_until(lambda: latest(service, "node/temperature") == 11.0, timeout=15)
            await wait_until(lambda: latest(service, "node/online") is True)
            sensor.set(12.0, time.time())
            await wait_until(lambda: latest(service, "node/temperature") == 12.0)
        assert runner.health.restarts == 0


TEXT_PROFILE = """
[profile]
name = "libcoap-node"
[[resources]]
path = "sensor"
format = "text"
[[resources.points]]
name = "value"
unit = "Cel"
writable = true
"""


@pytest.mark.skipif(COAP_SERVER is None or COAP_CLIENT is None, reason="libcoap3-bin not installed")
def test_libcoap_server_text_resource_observed_and_written(tmp_path):
    port = free_port()
    (tmp_path / "text.toml").write_text(TEXT_PROFILE)
    config = load_config(
        write_site(
            tmp_path,
            f"""
[[devices]]
name = "thread-node"
driver = "coap"
[devices.options]
uri = "coap://127.0.0.1:{port}"
profile = "text.toml"
retry_min = "100ms"
retry_max = "500ms"
""",
        )
    )
    uri = f"coap://127.0.0.1:{port}/sensor"

    async def scenario() -> None:
        server = await asyncio.create_subprocess_exec(
            COAP_SERVER,
            "-A",
            "127.0.0.1",
            "-p",
            str(port),
            "-d",
            "4",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            # libcoap's example server creates an observable resource on the first PUT (-d)
            async def put(text: str) -> None:
                while (await run_tool(COAP_CLIENT, "-m", "put", "-e", text, uri))[0] != 0:
                    await asyncio.sleep(0.1)

            await put("21.5")
            service = Service(config)
            async with running(service):
                await wait_until(lambda: latest(service, "thread-node/value") == 21.5)
                assert service.hub.latest["thread-node/value"].unit == "Cel"
                await put("-3.25")  # a notification (no polling configured)
                await wait_until(lambda: latest(service, "thread-node/value") == -3.25)
                await service.actuation.write("thread-node/value", 7, source="test")
                await wait_until(lambda: latest(service, "thread-node/value") == 7)
                rc, out = await run_tool(COAP_CLIENT, uri)
                assert rc == 0 and out.strip() == b"7"
        finally:
            server.terminate()
            await server.wait()

    asyncio.run(scenario())
