"""The Eclipse Hono profile against a CoAP adapter stand-in written from Hono's user guide:
publishing on behalf of devices, back-pressure, and commands through actuation."""

from __future__ import annotations

import asyncio
import json

import aiocoap
import pytest

from gateway.coap import hono
from gateway.coap.commands import Command, CommandResult
from gateway.config import load_config
from gateway.model import Reading
from gateway.problems import ConfigError
from gateway.service import Service
from tests.conftest import running, wait_until, write_site

from .hono_receiver import Hono

T0 = 1_767_225_600.0


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 120))


# -- sans-IO -------------------------------------------------------------------------------


def test_a_batch_splits_into_telemetry_per_device_and_events_of_the_gateway():
    readings = [
        Reading("lamp-1/level", 40, T0),
        Reading("meter-1/energy", 2.5, T0),
        Reading("lamp-1/power", 48.0, T0),
        Reading("events/actuation", "{}", T0),
    ]
    parts = hono.split_batch(readings, "gw-1")
    assert [(p.endpoint, p.device, [r.point for r in p.readings]) for p in parts] == [
        ("telemetry", "lamp-1", ["lamp-1/level", "lamp-1/power"]),
        ("telemetry", "meter-1", ["meter-1/energy"]),
        ("event", "gw-1", ["events/actuation"]),
    ]
    assert parts[0].path("T") == ["telemetry", "T", "lamp-1"]


def test_commands_are_read_from_the_response_options():
    none = hono.parse_command([], [], b"", None, tenant="T", gateway_device="gw")
    assert none is None  # the wait ran out: no command
    cmd = hono.parse_command(
        ["command_response", "T", "lamp-1", "req-9"],
        ["hono-command=setValue"],
        b'{"point": "level", "value": 30}',
        50,
        tenant="T",
        gateway_device="gw",
    )
    assert cmd == hono.HonoCommand("T", "lamp-1", "setValue", "req-9", b'{"point": "level", "value": 30}', 50)
    assert hono.command_action(cmd, "hono") == Command("lamp-1/level", 30, "hono")
    assert hono.response_path(cmd) == ["command_response", "T", "lamp-1", "req-9"]
    one_way = hono.parse_command(
        ["command", "T", "lamp-2"], ["hono-command=setValue"], b"{}", 50, tenant="T", gateway_device="gw"
    )
    assert one_way is not None and one_way.request_id is None and one_way.device == "lamp-2"
    with pytest.raises(hono.CommandError, match="neither"):
        hono.parse_command(["elsewhere"], ["hono-command=x"], b"", None, tenant="T", gateway_device="gw")
    status, body = hono.command_response(CommandResult("refused", "lamp-1/level", 95, "outside"))
    assert status == 409 and json.loads(body)["error"] == "outside"


def test_hono_needs_a_tenant(tmp_path):
    with pytest.raises(ConfigError, match="tenant: is required"):
        load_config(
            write_site(tmp_path, '[[upstreams]]\nname = "hono"\nuri = "coap://127.0.0.1"\nformat = "hono"\n')
        )
    with pytest.raises(ConfigError, match="tenant: is only used with format"):
        load_config(
            write_site(tmp_path, '[[upstreams]]\nname = "c"\nuri = "coap://127.0.0.1/x"\ntenant = "T"\n')
        )


# -- against the stand-in ------------------------------------------------------------------


def site(uri: str, extra: str = "") -> str:
    return f'''
[[devices]]
name = "lamp-1"
driver = "simulated"
interval = "1h"
[devices.options]
profile = "streetlight"

[actuators."lamp-1/level"]
min = 10
max = 80

[[upstreams]]
name = "hono"
uri = "{uri}"
format = "hono"
tenant = "DEFAULT_TENANT"
linger = "20ms"
retry_min = "50ms"
retry_max = "200ms"
{extra}
'''


def test_readings_are_published_on_behalf_of_each_device_as_senml_cbor(tmp_path):
    async def main():
        async with Hono() as adapter:
            adapter.adapter.refusals = [(aiocoap.TOO_MANY_REQUESTS, 1)]
            service = Service(load_config(write_site(tmp_path, site(adapter.uri))))
            async with running(service):
                await service.hub.publish(
                    [
                        Reading("meter-1/energy", 2.5, T0, "kWh"),
                        Reading("meter-1/energy", 2.75, T0 + 60, "kWh"),
                    ]
                )
                await wait_until(
                    lambda: (
                        ("telemetry", "meter-1") in adapter.adapter.published
                        and ("telemetry", "lamp-1") in adapter.adapter.published
                    ),
                    timeout=30,
                )
                await service.actuation.write("lamp-1/level", 50, source="api")
                await wait_until(lambda: ("event", "test-site") in adapter.adapter.published, timeout=30)
        published = adapter.adapter.published
        assert published[("telemetry", "meter-1")] == [
            ("test-site/meter-1/energy", 2.5, T0),
            ("test-site/meter-1/energy", 2.75, T0 + 60),
        ]
        assert {name for name, _, _ in published[("telemetry", "lamp-1")]} >= {
            "test-site/lamp-1/level",
            "test-site/lamp-1/power",
        }
        assert [name for name, _, _ in published[("event", "test-site")]] == ["test-site/events/actuation"]
        assert adapter.adapter.content_formats == {112}  # SenML+CBOR passed through
        # 4.29 with Max-Age 1: the gateway came back after the time asked for, not retry_min.
        assert min(adapter.adapter.accept_times) - adapter.adapter.refusal_times[0] >= 0.95

    run(main())


def lamp_level(service) -> object:
    latest = service.hub.latest.get("lamp-1/level")
    return latest.value if latest else None


def test_commands_reach_the_lamp_through_actuation_and_are_answered(tmp_path):
    async def main():
        async with Hono() as adapter:
            config = site(adapter.uri, "commands = true\ncommand_ttd = 2")
            service = Service(load_config(write_site(tmp_path, config)))
            root = adapter.root
            responses = adapter.adapter.responses
            async with running(service):
                await wait_until(lambda: adapter.adapter.waiting == 1, timeout=30)
                ok = root.send_command("lamp-1", "setValue", {"point": "level", "value": 40})
                await wait_until(lambda: ok in responses, timeout=30)
                assert responses[ok] == (200, {"status": "written", "point": "lamp-1/level", "value": 40})
                assert lamp_level(service) == 40

                high = root.send_command("lamp-1", "setValue", {"point": "level", "value": 95})
                await wait_until(lambda: high in responses, timeout=30)
                status, body = responses[high]
                assert status == 409 and "outside the allowed range 10..80" in body["error"]

                await service.overrides.set("lamp-1/level", 70, 3600, "technician")
                await service.actuation.sync_overrides()
                held = root.send_command("lamp-1", "setValue", {"point": "level", "value": 20})
                await wait_until(lambda: held in responses, timeout=30)
                status, body = responses[held]
                assert status == 409 and "manual override" in body["error"]
                assert lamp_level(service) == 70

                read = root.send_command("lamp-1", "getValue", {"point": "level"})
                await wait_until(lambda: read in responses, timeout=30)
                assert responses[read][0] == 200 and responses[read][1]["value"] == 70

                nowhere = root.send_command("lamp-1", "setValue", {"point": "nope", "value": 1})
                await wait_until(lambda: nowhere in responses, timeout=30)
                assert (
                    responses[nowhere][0] == 400
                    and "no point 'lamp-1/nope'" in responses[nowhere][1]["error"]
                )

                await service.overrides.clear("lamp-1/level")
                await service.actuation.sync_overrides()
                root.send_command("lamp-1", "setValue", {"point": "level", "value": 25}, one_way=True)
                await wait_until(lambda: lamp_level(service) == 25, timeout=30)
                # The waits go on after the time runs out (command_ttd = 2s).
                waits = adapter.adapter.waits
                await wait_until(lambda: adapter.adapter.waits > waits + 1, timeout=30)
                health = service.health()["components"]["upstreams"]["hono"]
        assert health["commands"]["written"] == 2 and health["commands"]["refused"] == 2
        assert health["commands"]["invalid"] == 1

    run(main())
