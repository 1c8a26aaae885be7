"""Registration with a CoRE Resource Directory (RFC 9176), against aiocoap-rd on loopback:
a lookup by resource type finds the gateway's /readings, the link set goes as Block1, the
registration is refreshed, made again after the directory restarts, and lapses on stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiocoap
import pytest

from gateway.coap import rd
from gateway.coap.linkformat import Link, parse_link_format
from gateway.config import load_config
from gateway.problems import ConfigError
from gateway.service import Service
from tests.coap_uplink.receiver import free_udp_port
from tests.conftest import running, wait_until, write_site

RD = Path(sys.executable).with_name("aiocoap-rd")


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 120))


def test_link_format_and_the_registration_interface():
    wkc = (
        '</.well-known/core>;ct="40",</resourcedirectory/>;ct="40";rt="core.rd",'
        '</resource-lookup/>;ct="40";rt="core.rd-lookup-res";obs'
    )
    assert rd.registration_interface(wkc) == "/resourcedirectory/"
    links = parse_link_format(b'</a>;rt="x y";title="a, b",</b>;obs')
    assert links == [Link("/a", (("rt", "x y"), ("title", "a, b"))), Link("/b", (("obs", None),))]
    assert (
        rd.link_set('</.well-known/core>;ct=40,</readings>;rt="gateway.readings"')
        == '</readings>;rt="gateway.readings"'
    )
    assert rd.registration_query("gw-1", 60, "city", None) == ["ep=gw-1", "lt=60", "d=city"]
    assert rd.outcome(0x84, refreshing=True) is rd.Outcome.LOST  # 4.04
    assert rd.outcome(0x41, refreshing=False) is rd.Outcome.REGISTERED


def test_directory_section_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"directory\.uri: 'http://x' must be coap://"):
        load_config(write_site(tmp_path, '[directory]\nuri = "http://x"\n'))
    with pytest.raises(ConfigError, match="directory.registration_path: must start with '/'"):
        load_config(write_site(tmp_path, '[directory]\nuri = "coap://x"\nregistration_path = "rd"\n'))


@contextlib.asynccontextmanager
async def directory(port: int):
    """aiocoap-rd in its own process (so it can be restarted and forget everything)."""
    process = subprocess.Popen(
        [str(RD), "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        async with aiocoap_client() as client:

            async def up() -> bool:
                try:
                    message = aiocoap.Message(
                        code=aiocoap.GET, uri=f"coap://127.0.0.1:{port}/.well-known/core"
                    )
                    response = await asyncio.wait_for(client.request(message).response, 1)
                    return response.code.is_successful()
                except Exception:  # noqa: BLE001 - not up yet
                    return False

            for _ in range(100):
                if await up():
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("aiocoap-rd did not come up")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)


@contextlib.asynccontextmanager
async def aiocoap_client():
    context = await aiocoap.Context.create_client_context(transports=["udp6"])
    try:
        yield context
    finally:
        await asyncio.wait_for(context.shutdown(), 10)


async def lookup(port: int, query: str) -> list[Link]:
    async with aiocoap_client() as client:
        message = aiocoap.Message(code=aiocoap.GET, uri=f"coap://127.0.0.1:{port}/resource-lookup/")
        message.opt.uri_query = (query,)
        response = await asyncio.wait_for(client.request(message).response, 10)
        assert response.code.is_successful(), response
        return parse_link_format(response.payload)


def site(api_port: int, rd_port: int, lifetime: str = "1h", points: int = 60) -> str:
    custom = "".join(
        f'[[devices.options.points]]\nname = "setpoint_{i:02d}"\nwritable = true\n' for i in range(points)
    )
    return f'''
[[devices]]
name = "lamp-1"
driver = "simulated"
interval = "1h"
[devices.options]
profile = "streetlight"
{custom}
[api]
bind = "127.0.0.1"
port = {api_port}
public = ["discovery", "readings", "points"]

[directory]
uri = "coap://127.0.0.1:{rd_port}"
lifetime = "{lifetime}"
retry_min = "100ms"
retry_max = "500ms"
'''


def test_a_lookup_by_resource_type_finds_the_readings_and_lapses_when_the_gateway_stops(tmp_path):
    api_port, rd_port = free_udp_port(), free_udp_port()

    async def main():
        async with directory(rd_port):
            service = Service(load_config(write_site(tmp_path, site(api_port, rd_port))))
            async with running(service):
                component = service.components["directory"]
                await wait_until(lambda: component.state == "registered", timeout=30)
                found = await lookup(rd_port, "rt=gateway.readings")
                assert [link.target for link in found] == [f"coap://127.0.0.1:{api_port}/readings"]
                # The whole link set arrived (it needed Block1: well over 1024 bytes).
                assert component.link_bytes > 2048
                points = await lookup(rd_port, "ep=test-site")
                assert f"coap://127.0.0.1:{api_port}/points/lamp-1/setpoint_59" in {
                    link.target for link in points
                }
            assert await lookup(rd_port, "rt=gateway.readings") == []

    run(main())


def test_refreshed_before_expiry_and_registered_again_after_the_directory_restarts(tmp_path):
    api_port, rd_port = free_udp_port(), free_udp_port()

    async def main():
        service = Service(load_config(write_site(tmp_path, site(api_port, rd_port, "3s", points=0))))
        async with contextlib.AsyncExitStack() as stack:
            first = await stack.enter_async_context(directory(rd_port))
            async with running(service):
                component = service.components["directory"]
                await wait_until(lambda: component.refreshes >= 2, timeout=30)
                # Refreshed at 2.25 s of each 3 s lifetime: found all along, registered once.
                assert await lookup(rd_port, "rt=gateway.readings") != []
                assert component.registrations == 1
                os.killpg(first.pid, signal.SIGKILL)  # the directory restarts, empty
                first.wait(10)
                async with directory(rd_port):
                    await wait_until(lambda: component.registrations >= 2, timeout=30)
                    found = await lookup(rd_port, "rt=gateway.readings")
                    assert [link.target for link in found] == [f"coap://127.0.0.1:{api_port}/readings"]

    run(main())


def test_a_killed_gateway_lapses_when_its_lifetime_runs_out(tmp_path):
    """No DELETE from a gateway killed with SIGKILL: the directory lets it lapse at ``lt``."""
    api_port, rd_port = free_udp_port(), free_udp_port()
    config = write_site(tmp_path, site(api_port, rd_port, "3s", points=0))

    async def main():
        async with directory(rd_port):
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "-c", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                for _ in range(300):
                    if await lookup(rd_port, "rt=gateway.readings"):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the gateway never registered")
                os.killpg(gateway.pid, signal.SIGKILL)
                gateway.wait(10)
                loop = asyncio.get_running_loop()
                killed_at = loop.time()
                for _ in range(300):
                    if not await lookup(rd_port, "rt=gateway.readings"):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the registration never lapsed")
                # It lapsed by its lifetime (3 s after the last refresh), not at once.
                assert loop.time() - killed_at > 0.5
            finally:
                if gateway.poll() is None:
                    os.killpg(gateway.pid, signal.SIGKILL)
                    gateway.wait(10)

    run(main())
