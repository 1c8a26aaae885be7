"""The CoAP API over loopback, read by libcoap's coap-client-notls and by aiocoap clients."""

from __future__ import annotations

import asyncio
import json
import shutil

import aiocoap
import cbor2
import pytest
from aiocoap.numbers.codes import Code

from gateway.coap.api import ApiComponent, ApiError
from gateway.coap.api_config import ApiConfig
from gateway.coap.senml import decode_senml_cbor
from gateway.config import load_config
from gateway.model import Reading
from gateway.service import Service
from tests.conftest import SITE_HEADER, running, wait_until, write_site

from .conftest import api_site_body
from .helpers import client_oscore_dir, coap_client, free_port, request, write_credentials

COAP_CLIENT = shutil.which("coap-client-notls")
needs_libcoap = pytest.mark.skipif(COAP_CLIENT is None, reason="libcoap3-bin not installed")


async def coap_client_run(*args: str, timeout: float = 20.0) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        COAP_CLIENT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out


@needs_libcoap
def test_libcoap_discovers_and_pages_through_every_reading_exactly_once_with_block2(api_site):
    config, port, _ = api_site()
    base = f"coap://127.0.0.1:{port}"

    async def scenario():
        service = Service(config)
        async with running(service):
            rc, out = await coap_client_run("-A", "40", f"{base}/.well-known/core")
            links = out.decode()
            for path in (
                "/readings",
                "/health",
                "/rules",
                "/overrides",
                "/points/lamp/level",
                "/points/lamp/power",
                "/overrides/lamp/level",
            ):
                assert f"<{path}>" in links
            assert '</points/lamp/level>;ct="112 110 50 60 0";rt="gateway.point";if="core.a";obs' in links

            await wait_until(lambda: service.store.last_seq >= 120)
            seen: list[int] = []
            after = 0
            while True:
                # 64-byte blocks: every page of 50 readings spans many Block2 exchanges
                rc, out = await coap_client_run(
                    "-b", "64", "-A", "50", f"{base}/readings?after={after}&limit=50"
                )
                assert rc == 0, out
                page = json.loads(out)
                seen += [r["seq"] for r in page["readings"]]
                after = page["next"]
                if not page["more"] or after >= 120:
                    break
        # the light keeps publishing while we page: every reading shows up once, in order
        assert seen == list(range(1, len(seen) + 1)) and len(seen) >= 120

    asyncio.run(scenario())


@needs_libcoap
def test_libcoap_observes_a_point(api_site):
    config, port, _ = api_site()

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: "lamp/power" in service.hub.latest)
            rc, out = await coap_client_run(
                "-s", "2", "-A", "50", f"coap://127.0.0.1:{port}/points/lamp/power"
            )
        assert rc == 0
        notifications = out.decode().replace("}{", "}\n{").splitlines()
        timestamps = [json.loads(n)["ts"] for n in notifications]
        # initial answer plus live updates at 20 per second, in order. Each notification is
        # the point's state when it is rendered, so two batches that arrive before the first
        # render both show the newer reading: a repeat is the current state, never an old one.
        assert len(set(timestamps)) >= 3
        assert timestamps == sorted(timestamps)

    asyncio.run(scenario())


def test_aiocoap_pages_senml_cbor_with_block2_and_observes_writes(api_site):
    config, port, tmp = api_site()
    base = f"coap://127.0.0.1:{port}"

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: service.store.last_seq >= 400)
            async with coap_client() as plain, coap_client(client_oscore_dir(tmp), port) as scada:
                # 400 readings in one SenML-CBOR answer: far beyond one datagram, so Block2
                response = await request(plain, Code.GET, f"{base}/readings?limit=400")
                assert response.code == Code.CONTENT and response.opt.content_format == 112
                assert len(response.payload) > 1024
                pack = decode_senml_cbor(response.payload)
                assert len(pack.records) == 400
                assert cbor2.loads(response.payload)[0]["next"] == 400

                observation = plain.request(
                    aiocoap.Message(code=Code.GET, uri=f"{base}/points/lamp/level", observe=0, accept=50)
                )
                first = await observation.response
                assert json.loads(first.payload)["value"] == 100.0
                written = await request(scada, Code.PUT, f"{base}/points/lamp/level", payload=b"35")
                assert written.code == Code.CHANGED

                async def wait_for_value():
                    async for note in observation.observation:
                        if json.loads(note.payload)["value"] == 35.0:
                            return

                await asyncio.wait_for(wait_for_value(), 10)
                observation.observation.cancel()
            assert service.components["api"].health()["writes"] == 1

    asyncio.run(scenario())


def test_missing_or_wrong_oscore_credentials_read_per_policy_and_never_write(api_site):
    config, port, tmp = api_site()
    base = f"coap://127.0.0.1:{port}"

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: "lamp/level" in service.hub.latest)
            async with coap_client() as anonymous:
                for path in ("/readings", "/points/lamp/level", "/health", "/.well-known/core"):
                    assert (await request(anonymous, Code.GET, base + path)).code == Code.CONTENT, path
                for path in ("/overrides", "/rules", "/overrides/lamp/level"):
                    assert (await request(anonymous, Code.GET, base + path)).code == Code.UNAUTHORIZED, path
                writes = [
                    (Code.PUT, "/points/lamp/level", b"10"),
                    (Code.POST, "/points/lamp/level", b"10"),
                    (Code.PUT, "/overrides/lamp/level", b'{"value": 1, "duration": 60}'),
                    (Code.DELETE, "/overrides/lamp/level", b""),
                    (Code.PUT, "/points/lamp/power", b"1"),
                    (Code.PUT, "/points/nope/x", b"1"),
                ]
                for method, path, payload in writes:
                    response = await request(
                        anonymous,
                        method,
                        base + path,
                        payload=payload,
                        content_format=50 if payload else None,
                    )
                    assert response.code in (Code.UNAUTHORIZED, Code.NOT_FOUND), (path, response)
                    if path != "/points/nope/x":
                        assert response.code == Code.UNAUTHORIZED

            wrong_key = client_oscore_dir(tmp / "wrong", secret="ff" * 16)
            unknown_id = client_oscore_dir(tmp / "unknown", sender="77")
            for directory in (wrong_key, unknown_id):
                async with coap_client(directory, port) as impostor:
                    for method, path in ((Code.PUT, "/points/lamp/level"), (Code.GET, "/overrides")):
                        try:
                            response = await request(impostor, method, base + path, payload=b"10")
                        except aiocoap.error.Error:
                            continue  # the client cannot even verify the refusal: refused
                        assert not response.code.is_successful(), (directory, path, response)
            await asyncio.sleep(0.2)
            assert service.devices.runners["lamp"].health.writes == 0
            assert service.overrides.all() == []

    asyncio.run(scenario())


def test_oscore_clients_control_overrides_and_read_only_clients_are_forbidden(api_site):
    config, port, tmp = api_site()
    base = f"coap://127.0.0.1:{port}"

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: "lamp/level" in service.hub.latest)
            async with coap_client(client_oscore_dir(tmp), port) as scada:
                response = await request(
                    scada,
                    Code.PUT,
                    f"{base}/overrides/lamp/level",
                    payload=b'{"value": 20, "duration": "10m"}',
                    content_format=50,
                )
                assert response.code == Code.CHANGED
                override = service.overrides.active("lamp/level")
                assert override is not None and override.value == 20 and override.source == "api"
                listed = await request(scada, Code.GET, f"{base}/overrides", accept=50)
                assert [o["point"] for o in json.loads(listed.payload)] == ["lamp/level"]
                await wait_until(lambda: service.hub.latest["lamp/level"].value == 20.0)

                bad = await request(scada, Code.PUT, f"{base}/points/lamp/level", payload=b"bright")
                assert bad.code == Code.BAD_REQUEST and b"expected a number" in bad.payload
                not_writable = await request(scada, Code.PUT, f"{base}/points/lamp/power", payload=b"1")
                assert not_writable.code == Code.METHOD_NOT_ALLOWED

                rules = await request(scada, Code.GET, f"{base}/rules", accept=50)
                assert json.loads(rules.payload)["configured"] is False
                health = cbor2.loads((await request(scada, Code.GET, f"{base}/health")).payload)
                assert {"store", "devices", "components", "gateway"} <= set(health)
                assert health["components"]["api"]["clients"]["scada"]["access"] == "control"

                cleared = await request(scada, Code.DELETE, f"{base}/overrides/lamp/level")
                assert cleared.code == Code.DELETED and service.overrides.all() == []

            reader_dir = client_oscore_dir(tmp, sender="03")
            async with coap_client(reader_dir, port) as dashboard:
                assert (await request(dashboard, Code.GET, f"{base}/overrides")).code == Code.CONTENT
                refused = await request(dashboard, Code.PUT, f"{base}/points/lamp/level", payload=b"5")
                assert refused.code == Code.FORBIDDEN
        # sequence numbers and replay windows survive in the data dir, not in the config dir
        state = config.site.data_dir / "api-oscore" / "scada" / "sequence.json"
        assert state.exists()
        assert "secret" not in state.read_text()

    asyncio.run(scenario())


def test_oscore_client_keeps_working_across_a_gateway_restart(api_site):
    config, port, tmp = api_site()
    uri = f"coap://127.0.0.1:{port}/overrides"
    client_dir = client_oscore_dir(tmp)

    async def scenario():
        async with coap_client(client_dir, port) as scada:
            for _ in range(2):
                # the gateway's replay window and sequence numbers come back from its data dir
                async with running(Service(config)):
                    for _ in range(3):
                        assert (await request(scada, Code.GET, uri)).code == Code.CONTENT

    asyncio.run(scenario())


def test_port_in_use_is_a_clear_start_error(api_site):
    config, port, _ = api_site()

    async def scenario():
        blocker = await aiocoap.Context.create_server_context(None, ("127.0.0.1", port), transports=["udp6"])
        try:
            service = Service(config)
            component = ApiComponent(service, config.section("api", ApiConfig))
            await service.store.open()
            try:
                with pytest.raises(ApiError, match=f"cannot listen on 127.0.0.1 port {port}"):
                    await component.start()
            finally:
                await component.stop()
                await service.store.close()
        finally:
            await blocker.shutdown()

    asyncio.run(scenario())


def test_observing_a_point_before_its_first_reading_gets_the_first_value(api_site):
    config, port, _ = api_site()
    config_text = config.path.read_text().replace(
        "[api]",
        """
[[devices]]
name = "spare"
driver = "simulated"
enabled = false
[devices.options]
profile = "streetlight"

[api]""",
        1,
    )
    config.path.write_text(config_text)
    config = load_config(config.path)

    async def scenario():
        service = Service(config)
        async with running(service), coap_client() as plain:
            observation = plain.request(
                aiocoap.Message(
                    code=Code.GET, uri=f"coap://127.0.0.1:{port}/points/spare/level", observe=0, accept=50
                )
            )
            first = await observation.response
            assert first.code == Code.CONTENT and first.payload == b"null"
            await service.hub.publish([Reading("spare/level", 55.0, 1_800_000_000.0, "%")])
            note = await asyncio.wait_for(observation.observation.__aiter__().__anext__(), 10)
            assert json.loads(note.payload)["value"] == 55.0
            observation.observation.cancel()

    asyncio.run(scenario())


@needs_libcoap
def test_health_counts_readings_dropped_and_evicted_by_the_buffer(tmp_path):
    """/health carries the buffer's removal totals, which before lived only in its counters table."""
    write_credentials(tmp_path)
    port, dead = free_port(), free_port()
    header = SITE_HEADER + "max_bytes = 65536\nhard_max_bytes = 98304\n"
    body = (
        api_site_body(port)
        + f"""
[[upstreams]]
name = "cloud"
uri = "coap://127.0.0.1:{dead}/ingest"
retry_min = "50ms"
retry_max = "200ms"
"""
    )
    path = write_site(tmp_path, body, header=header)

    async def scenario():
        service = Service(load_config(path))
        async with running(service):
            await service.store.put(
                [Reading("lamp/power", float(i), 1_767_225_600 + i, "W") for i in range(8000)]
            )
            await service.store.flush()
            await service.store.apply_retention()  # nothing acknowledged: the hard quota drops
            rc, out = await coap_client_run("-A", "50", f"coap://127.0.0.1:{port}/health")
            assert rc == 0
            store = json.loads(out)["store"]
            assert store["dropped_unforwarded"] == (await service.store.counters())["dropped_unforwarded"]
            assert store["dropped_unforwarded"] > 0
            assert store["evicted_forwarded"] == 0 and store["evicted_age"] == 0

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_health_and_the_status_snapshot_share_one_judgement(tmp_path):
    """/health says `degraded` with the reason in plain words when the upstream is down, and the
    snapshot `gateway status` reads carries the same judgement (it once said `ok`)."""
    from gateway.snapshot import read_snapshot

    write_credentials(tmp_path)
    port, dead = free_port(), free_port()
    body = (
        api_site_body(port)
        + f"""
[[upstreams]]
name = "cloud"
uri = "coap://127.0.0.1:{dead}/ingest"
retry_min = "50ms"
retry_max = "200ms"
"""
    )
    path = write_site(tmp_path, body)

    async def scenario():
        service = Service(load_config(path))
        async with running(service):
            await service.hub.publish([Reading("lamp/power", 1.0, 1_767_225_600, "W")])
            cloud = service.components["upstreams"].uplinks["cloud"]
            await wait_until(lambda: cloud.failures_in_row >= 3, timeout=30)
            rc, out = await coap_client_run("-A", "50", f"coap://127.0.0.1:{port}/health")
            assert rc == 0
            health = json.loads(out)
            assert health["status"] == "degraded"
            assert any(
                r.startswith("upstream cloud is failing") and "connection refused" in r
                for r in health["reasons"]
            ), health["reasons"]
            data_dir = service.config.site.data_dir

            def snapshot_degraded() -> bool:
                try:
                    snapshot = read_snapshot(data_dir).health
                except Exception:  # noqa: BLE001 - not written yet
                    return False
                return snapshot["status"] == "degraded"

            await wait_until(snapshot_degraded, timeout=30)
            assert any(
                r.startswith("upstream cloud is failing") for r in read_snapshot(data_dir).health["reasons"]
            )

    asyncio.run(asyncio.wait_for(scenario(), 60))
