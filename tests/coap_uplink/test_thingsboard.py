"""ThingsBoard over CoAP, per device: telemetry under each device's token, the gateway's health
as its own device, RPC and shared attributes through actuation, against a ThingsBoard
stand-in written from the documented CoAP device API."""

from __future__ import annotations

import asyncio
import json
import os

import aiocoap
import pytest

from gateway.coap import thingsboard as tb
from gateway.coap.commands import Command, CommandResult, Read
from gateway.config import load_config
from gateway.model import Reading
from gateway.service import Service
from tests.conftest import running, wait_until, write_site

from .thingsboard_receiver import ThingsBoard

T0 = 1_767_225_600.0
TOKENS = {"gateway": "GW_TOKEN", "lamp-1": "LAMP1_TOKEN", "meter-1": "METER1_TOKEN"}


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 120))


# -- sans-IO -------------------------------------------------------------------------------


def test_telemetry_goes_per_device_with_short_keys_and_the_rest_to_the_gateway():
    readings = [
        Reading("lamp-1/level", 40, T0),
        Reading("lamp-1/power", 48.0, T0),
        Reading("meter-1/energy", 12.5, T0 + 1),
        Reading("events/actuation", "{}", T0 + 2),
    ]
    out = tb.telemetry_by_device(readings, ["lamp-1", "meter-1"])
    assert json.loads(out["lamp-1"]) == [{"ts": int(T0 * 1000), "values": {"level": 40, "power": 48.0}}]
    assert json.loads(out["meter-1"]) == [{"ts": int(T0 * 1000) + 1000, "values": {"energy": 12.5}}]
    assert json.loads(out[None]) == [{"ts": int(T0 * 1000) + 2000, "values": {"events/actuation": "{}"}}]


def test_rpc_messages_are_read_strictly():
    assert tb.parse_rpc(
        b'{"id": 7, "method": "setValue", "params": {"point": "level", "value": 30}}'
    ) == tb.RpcRequest(7, "setValue", {"point": "level", "value": 30})
    for bad, message in (
        (b"nope", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"method": "x"}', "no integer id"),
        (b'{"id": 1}', "has no method"),
    ):
        with pytest.raises(tb.MessageError, match=message):
            tb.parse_rpc(bad)
    rpc = tb.RpcRequest(1, "setValue", {"point": "level", "value": 30})
    assert tb.rpc_action(rpc, "lamp-1", "tb") == Command("lamp-1/level", 30, "tb")
    assert tb.rpc_action(tb.RpcRequest(2, "getValue", {"point": "level"}), "lamp-1", "tb") == Read(
        "lamp-1/level"
    )
    unknown = tb.rpc_action(tb.RpcRequest(3, "reboot", {}), "lamp-1", "tb")
    assert isinstance(unknown, CommandResult) and "unknown method 'reboot'" in unknown.message
    novalue = tb.rpc_action(tb.RpcRequest(4, "setValue", {"point": "level"}), "lamp-1", "tb")
    assert isinstance(novalue, CommandResult) and "needs params.value" in novalue.message


def test_shared_attributes_name_writable_points_or_are_ignored():
    commands, ignored = tb.attribute_commands(
        b'{"level": 55, "firmware": "1.2"}', "lamp-1", "tb", ["lamp-1/level"]
    )
    assert commands == [Command("lamp-1/level", 55, "tb")] and ignored == ["firmware"]
    commands, _ = tb.attribute_commands(b'{"shared": {"level": 20}}', "lamp-1", "tb", ["lamp-1/level"])
    assert commands == [Command("lamp-1/level", 20, "tb")]


# -- against the stand-in ------------------------------------------------------------------


def credentials(tmp_path) -> None:
    path = tmp_path / "credentials.toml"
    path.write_text(
        f'[tb]\ntoken = "{TOKENS["gateway"]}"\n[tb.devices]\n'
        f'lamp-1 = "{TOKENS["lamp-1"]}"\nmeter-1 = "{TOKENS["meter-1"]}"\n'
    )
    os.chmod(path, 0o600)


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
name = "tb"
uri = "{uri}"
format = "thingsboard"
credentials_file = "credentials.toml"
linger = "20ms"
retry_min = "50ms"
retry_max = "200ms"
health_interval = "200ms"
{extra}
'''


def test_each_device_posts_under_its_own_token_and_the_gateway_reports_its_health(tmp_path):
    credentials(tmp_path)

    async def main():
        async with ThingsBoard(list(TOKENS.values())) as platform:
            service = Service(load_config(write_site(tmp_path, site(platform.uri))))
            async with running(service):
                await service.hub.publish(
                    [
                        Reading("meter-1/energy", 12.5, T0, "kWh"),
                        Reading("meter-1/energy", 12.75, T0 + 60, "kWh"),
                        Reading("kiosk-3/door", True, T0 + 1),
                    ]
                )
                await wait_until(
                    lambda: (
                        "energy" in {k for _, k, _ in platform.values(TOKENS["meter-1"])}
                        and "level" in {k for _, k, _ in platform.values(TOKENS["lamp-1"])}
                        and any(k == "kiosk-3/door" for _, k, _ in platform.values(TOKENS["gateway"]))
                    ),
                    timeout=30,
                )
                await wait_until(
                    lambda: any(k == "gateway.uptime_s" for _, k, _ in platform.values(TOKENS["gateway"])),
                    timeout=30,
                )
                tb_health = service.health()["components"]["upstreams"]["tb"]
        meter = [(ts, v) for ts, k, v in platform.values(TOKENS["meter-1"]) if k == "energy"]
        assert meter == [(int(T0 * 1000), 12.5), (int(T0 * 1000) + 60_000, 12.75)]
        lamp_keys = {k for _, k, _ in platform.values(TOKENS["lamp-1"])}
        assert {"level", "power", "lux", "traffic"} <= lamp_keys  # short keys on its own device
        assert not any("/" in k for k in lamp_keys)
        gateway_keys = {k for _, k, _ in platform.values(TOKENS["gateway"])}
        assert "kiosk-3/door" in gateway_keys and "store.last_seq" in gateway_keys
        assert tb_health["devices_with_tokens"] == 2 and tb_health["health_sent"] >= 1
        for token in TOKENS.values():
            assert token not in json.dumps(tb_health)

    run(main())


def test_a_busy_platform_is_given_the_time_it_asks_for(tmp_path):
    credentials(tmp_path)

    async def main():
        async with ThingsBoard(list(TOKENS.values())) as platform:
            platform.platform.refusals = [(aiocoap.SERVICE_UNAVAILABLE, 1)]
            config = site(platform.uri).replace('health_interval = "200ms"', 'health_interval = "0s"')
            service = Service(load_config(write_site(tmp_path, config)))
            async with running(service):
                await service.hub.publish([Reading("meter-1/energy", 1.0, T0)])
                await wait_until(lambda: platform.values(TOKENS["meter-1"]), timeout=30)
        refused = platform.platform.refusal_times[0]
        assert min(platform.platform.accept_times) - refused >= 0.95  # Max-Age 1, not retry_min

    run(main())


def lamp_level(service) -> object:
    latest = service.hub.latest.get("lamp-1/level")
    return latest.value if latest else None


def test_rpc_and_shared_attributes_reach_the_lamp_through_actuation(tmp_path):
    credentials(tmp_path)
    token = TOKENS["lamp-1"]

    async def main():
        async with ThingsBoard(list(TOKENS.values())) as platform:
            service = Service(load_config(write_site(tmp_path, site(platform.uri, "commands = true"))))
            async with running(service):
                await wait_until(
                    lambda: (
                        platform.platform.observers.get(f"{token}:rpc") == 1
                        and platform.platform.observers.get(f"{token}:attributes") == 1
                    ),
                    timeout=30,
                )
                # Only lamp-1 has a writable point: the meter gets no subscription.
                assert f"{TOKENS['meter-1']}:rpc" not in platform.platform.observers

                ok = platform.send_rpc(token, "setValue", {"point": "level", "value": 40})
                await wait_until(lambda: (token, ok) in platform.platform.replies, timeout=30)
                assert platform.platform.replies[(token, ok)] == {
                    "status": "written",
                    "point": "lamp-1/level",
                    "value": 40,
                }
                assert lamp_level(service) == 40

                too_bright = platform.send_rpc(token, "setValue", {"point": "level", "value": 95})
                await wait_until(lambda: (token, too_bright) in platform.platform.replies, timeout=30)
                reply = platform.platform.replies[(token, too_bright)]
                assert reply["status"] == "refused" and "outside the allowed range 10..80" in reply["error"]
                assert lamp_level(service) == 40

                read = platform.send_rpc(token, "getValue", {"point": "level"})
                await wait_until(lambda: (token, read) in platform.platform.replies, timeout=30)
                assert platform.platform.replies[(token, read)]["value"] == 40

                await service.overrides.set("lamp-1/level", 70, 3600, "technician")
                await service.actuation.sync_overrides()
                held = platform.send_rpc(token, "setValue", {"point": "level", "value": 30})
                await wait_until(lambda: (token, held) in platform.platform.replies, timeout=30)
                reply = platform.platform.replies[(token, held)]
                assert reply["status"] == "refused" and "manual override" in reply["error"]
                assert lamp_level(service) == 70

                await service.overrides.clear("lamp-1/level")
                await service.actuation.sync_overrides()
                platform.update_shared_attributes(token, {"level": 55, "firmware": "2.0"})
                await wait_until(lambda: lamp_level(service) == 55, timeout=30)

                bogus = platform.send_rpc(token, "reboot", {})
                await wait_until(lambda: (token, bogus) in platform.platform.replies, timeout=30)
                assert "unknown method 'reboot'" in platform.platform.replies[(token, bogus)]["error"]
                counts = service.health()["components"]["upstreams"]["tb"]["commands"]
                await service.store.flush()  # write records reach the buffer without being awaited
                records = await service.store.history("events/actuation")
        assert counts["written"] == 2 and counts["refused"] == 2 and counts["invalid"] == 1
        sources = [json.loads(r.value)["source"] for r in records]
        assert sources.count("platform:tb") == 4  # every platform write is on the record

    run(main())


@pytest.mark.parametrize(
    "body, message",
    [
        ('uri = "coap://127.0.0.1/ingest"\ncommands = true', "commands: needs format = 'thingsboard'"),
        (
            'uri = "coap://127.0.0.1/ingest"\nhealth_interval = "1m"',
            'is only used with format = "thingsboard"',
        ),
    ],
)
def test_profile_options_name_the_key(tmp_path, body, message):
    from gateway.problems import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config(write_site(tmp_path, f'[[upstreams]]\nname = "cloud"\n{body}\n'))
    assert message in str(info.value) and "upstreams[0]" in str(info.value)


def test_a_device_token_with_a_slash_is_refused_without_echoing_it(tmp_path):
    from gateway.coap.credentials import load_credentials
    from gateway.problems import ConfigError

    path = tmp_path / "credentials.toml"
    path.write_text('[tb]\ntoken = "GW"\n[tb.devices]\nlamp-1 = "se/cret"\n')
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError) as info:
        load_credentials(path)
    assert "tb.devices.lamp-1" in str(info.value) and "se/cret" not in str(info.value)
