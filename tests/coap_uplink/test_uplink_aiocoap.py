"""The uplink against an aiocoap receiver on loopback: order, batching, back-pressure, restarts."""

from __future__ import annotations

import asyncio
import json
import os

import aiocoap
import aiocoap.resource as resource
import cbor2

from gateway.clock import ManualClock
from gateway.coap.credentials import OscoreKeys, oscore_context
from gateway.config import load_config
from gateway.model import Reading
from gateway.service import Service
from tests.conftest import running, wait_until, write_site

from .receiver import Receiver, free_udp_port

T0 = 1_767_225_600.0


def run(coro) -> None:
    """asyncio.run with a bound, so a hang fails the test instead of stalling the run."""
    asyncio.run(asyncio.wait_for(coro, 120))


def readings(count: int, start: int = 0) -> list[Reading]:
    return [
        Reading(f"dev{i % 3}/p{i % 7}", round((i % 500) * 0.1, 1), T0 + i * 0.25, "C")
        for i in range(start, start + count)
    ]


def expected(batch: list[Reading], gw: str = "test-site") -> list[tuple[str, object, float]]:
    return [(f"{gw}/{r.point}", r.value, round(r.ts, 3)) for r in batch]


def normalized(records):
    """Test values have one decimal; compact floats are exact to that digit."""
    return [(name, round(value, 1) if isinstance(value, float) else value, ts) for name, value, ts in records]


def in_point_order(records):
    """Per point, the (time, value) sequence; the uplink keeps each point's order."""
    out: dict[str, list] = {}
    for name, value, ts in records:
        out.setdefault(name, []).append((ts, round(value, 1) if isinstance(value, float) else value))
    return out


def upstream(uri: str, extra: str = "") -> str:
    return f'''
[[upstreams]]
name = "cloud"
uri = "{uri}"
batch_size = 100
backlog_batch_size = 1000
linger = "50ms"
retry_min = "50ms"
retry_max = "200ms"
{extra}
'''


def test_backlog_is_delivered_once_in_order_with_block1(tmp_path):
    async def main():
        async with Receiver() as rx:
            service = Service(load_config(write_site(tmp_path, upstream(rx.uri))))
            batch = readings(3000)
            await service.store.open()
            await service.store.put(batch)  # a backlog already in the buffer at start
            await service.store.close()
            service = Service(load_config(write_site(tmp_path, upstream(rx.uri))))
            async with running(service):
                assert "uplink:cloud" in service.store.consumers
                await wait_until(lambda: len(rx.received.accepted) >= 3000, timeout=60)
                await wait_until(
                    lambda: service.health()["components"]["upstreams"]["cloud"]["lag_readings"] == 0
                )
                health = service.health()["components"]["upstreams"]["cloud"]
                assert await service.store.get_cursor("uplink:cloud") == service.store.last_seq
            assert in_point_order(rx.received.accepted) == in_point_order(expected(batch))
            assert rx.received.batches == [1, 2, 3] and rx.received.duplicates == []
            assert min(rx.received.payload_sizes) > 1024  # needed Block1 to get there
            assert health["batches_sent"] == 3 and health["last_error"] is None
            assert health["last_success"] is not None

    run(main())


def test_default_uplink_is_exact_for_a_plain_cbor_decoder(tmp_path):
    """86.1 must arrive as 86.1 (not 86.125), and bt + t as the buffer's timestamp."""
    values = [86.1, 0.95, 230.1, 21.3, 12345.67, 0.1, -40.0, 1e-300, 2.5]
    sent = [Reading(f"dev/p{i % 3}", v, T0 + i * 9.667 + 0.001, "C") for i, v in enumerate(values * 50)]

    async def main():
        async with Receiver() as rx:
            service = Service(load_config(write_site(tmp_path, upstream(rx.uri))))
            async with running(service):
                await service.hub.publish(sent)
                cloud = service.components["upstreams"].uplinks["cloud"]
                await wait_until(lambda: cloud.cursor == len(sent), timeout=30)
                buffer = await service.store.read_after(0, len(sent))
        received = []
        for payload in rx.received.payloads:
            base_name, base_time = "", 0.0
            for record in cbor2.loads(payload):  # nothing but cbor2 and RFC 8428
                base_name, base_time = record.get(-2, base_name), record.get(-3, base_time)
                received.append((base_name, record[2], base_time + record.get(6, 0)))
        assert sorted(received) == sorted((f"test-site/{r.point}", r.value, r.ts) for r in buffer)

    run(main())


def test_live_readings_go_out_after_linger_in_small_batches(tmp_path):
    async def main():
        async with Receiver() as rx:
            service = Service(load_config(write_site(tmp_path, upstream(rx.uri))))
            async with running(service):
                for start in (0, 5, 10):
                    await service.hub.publish(readings(5, start))
                    await wait_until(lambda s=start: len(rx.received.accepted) >= s + 5)
            assert normalized(rx.received.accepted) == expected(readings(15))
            assert len(rx.received.batches) >= 2

    run(main())


def test_back_pressure_waits_exactly_the_max_age(tmp_path):
    async def main():
        clock = ManualClock()
        async with Receiver() as rx:
            rx.received.refusals.append((aiocoap.SERVICE_UNAVAILABLE, 30))
            service = Service(load_config(write_site(tmp_path, upstream(rx.uri))), clock=clock)
            async with running(service):
                await service.hub.publish(readings(10))
                cloud = service.components["upstreams"].uplinks["cloud"]
                await wait_until(lambda: cloud.state == "backoff")
                health = cloud.health()
                assert health["last_error"] == "upstream answered 5.03"
                assert health["retry_in_s"] == 30
                assert health["lag_readings"] == 10
                await clock.advance(29)
                await asyncio.sleep(0.3)  # nothing may be sent before Max-Age ends
                assert rx.received.batches == []
                await clock.advance(1)
                await wait_until(lambda: len(rx.received.accepted) == 10)
            assert rx.received.batches == [1]

    run(main())


def test_back_pressure_with_max_age_zero_backs_off_instead_of_retrying_at_once(tmp_path):
    async def main():
        clock = ManualClock()
        async with Receiver() as rx:
            rx.received.refusals += [(aiocoap.SERVICE_UNAVAILABLE, 0), (aiocoap.TOO_MANY_REQUESTS, 0)]
            service = Service(load_config(write_site(tmp_path, upstream(rx.uri))), clock=clock)
            async with running(service):
                await service.hub.publish(readings(10))
                cloud = service.components["upstreams"].uplinks["cloud"]
                await wait_until(lambda: cloud.state == "backoff")
                assert 0.025 <= cloud.retry_at - cloud.last_error_at <= 0.05  # retry_min 50 ms, jittered
                await asyncio.sleep(0.3)  # the clock stands: no retry yet
                assert len(rx.received.refusal_times) == 1
                await clock.advance(0.05)  # the longest the first wait can be
                await wait_until(lambda: len(rx.received.refusal_times) == 2 and cloud.state == "backoff")
                assert 0.05 <= cloud.retry_at - cloud.last_error_at <= 0.1  # and it doubles
                await clock.advance(0.1)
                await wait_until(lambda: len(rx.received.accepted) == 10)
            assert rx.received.batches == [1]

    run(main())


def test_restart_resumes_where_it_stopped_and_numbers_continue(tmp_path):
    async def main():
        async with Receiver() as rx:
            first, second = readings(500), readings(300, 500)
            service = Service(load_config(write_site(tmp_path, upstream(rx.uri))))
            async with running(service):
                await service.hub.publish(first)
                cloud = service.components["upstreams"].uplinks["cloud"]
                # acknowledged, not just received: a stop before the ack lands means a re-send
                await wait_until(lambda: cloud.cursor == 500)
            numbers_before = list(rx.received.batches)
            service = Service(load_config(write_site(tmp_path, upstream(rx.uri))))
            async with running(service):
                await service.hub.publish(second)
                await wait_until(lambda: len(rx.received.accepted) == 800)
            assert rx.received.duplicates == []
            assert rx.received.batches == list(range(1, len(rx.received.batches) + 1))
            assert len(rx.received.batches) > len(numbers_before)
            assert in_point_order(rx.received.accepted) == in_point_order(expected(first + second))

    run(main())


def test_too_large_answer_halves_the_batch_under_the_same_number(tmp_path):
    async def main():
        async with Receiver() as rx:
            rx.received.refusals.append((aiocoap.REQUEST_ENTITY_TOO_LARGE, None))
            service = Service(load_config(write_site(tmp_path, upstream(rx.uri))))
            await service.store.open()
            await service.store.put(readings(1000))
            await service.store.close()
            service = Service(load_config(write_site(tmp_path, upstream(rx.uri))))
            async with running(service):
                await wait_until(lambda: len(rx.received.accepted) == 1000, timeout=30)
            assert rx.received.batches == [1, 2]
            assert rx.received.duplicates == []

    run(main())


def test_unreachable_upstream_backs_off_then_delivers_everything(tmp_path):
    async def main():
        port = free_udp_port()
        service = Service(load_config(write_site(tmp_path, upstream(f"coap://127.0.0.1:{port}/ingest"))))
        async with running(service):
            await service.hub.publish(readings(50))
            cloud = service.components["upstreams"].uplinks["cloud"]
            # wait for three failed attempts, not three started ones: the third may still be in flight
            await wait_until(lambda: cloud.health()["failures_in_row"] >= 3, timeout=30)
            health = cloud.health()
            # plain words a technician understands, not "NetworkError: Network error: NetworkError"
            assert health["last_error"].startswith("connection refused: nothing is listening")
            assert health["failures_in_row"] >= 3 and health["failing_since_ts"] is not None
            assert health["state"] in ("backoff", "sending")  # retrying, never giving up
            assert health["lag_readings"] == 50 and health["last_success"] is None
            assert await service.store.get_cursor("uplink:cloud") == 0
            async with Receiver(port) as rx:
                await wait_until(lambda: len(rx.received.accepted) == 50, timeout=30)
            assert rx.received.batches == [1]

    run(main())


SECRET = "0102030405060708090a0b0c0d0e0f10"


def test_oscore_protected_uplink(tmp_path):
    credentials = tmp_path / "credentials.toml"
    credentials.write_text(
        f'[cloud.oscore]\nsender_id = "01"\nrecipient_id = "02"\n'
        f'master_secret = "{SECRET}"\nmaster_salt = "9e7ca92223786340"\n'
    )
    os.chmod(credentials, 0o600)

    async def main():
        server_keys = OscoreKeys(b"\x02", b"\x01", bytes.fromhex(SECRET), bytes.fromhex("9e7ca92223786340"))
        server_context = oscore_context(server_keys, tmp_path / "server-oscore")
        async with Receiver(oscore=server_context) as rx:
            config = upstream(rx.uri, 'security = "oscore"\ncredentials_file = "credentials.toml"')
            service = Service(load_config(write_site(tmp_path, config)))
            async with running(service):
                await service.hub.publish(readings(400))  # several blocks, each protected
                await wait_until(lambda: len(rx.received.accepted) == 400, timeout=30)
            assert rx.received.protected and all(rx.received.protected)
            sequence = json.loads((tmp_path / "data" / "oscore" / "cloud" / "sequence.json").read_text())
            assert sequence["next-to-send"] > 0  # persisted: no nonce reuse after restart
        server_context.lockfile.release()

    run(main())


class TelemetryResource(resource.Resource):
    def __init__(self):
        super().__init__()
        self.payloads: list[tuple[int | None, list]] = []

    async def render_post(self, request):
        self.payloads.append((request.opt.content_format, json.loads(request.payload)))
        return aiocoap.Message(code=aiocoap.CREATED)


def test_thingsboard_profile_posts_json_telemetry_with_the_token(tmp_path):
    credentials = tmp_path / "credentials.toml"
    credentials.write_text('[tb]\ntoken = "A1_TEST_TOKEN"\n')
    os.chmod(credentials, 0o600)

    async def main():
        port = free_udp_port()
        telemetry = TelemetryResource()
        site = resource.Site()
        site.add_resource(["api", "v1", "A1_TEST_TOKEN", "telemetry"], telemetry)
        server = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port))
        try:
            config = f"""
[[upstreams]]
name = "tb"
uri = "coap://127.0.0.1:{port}"
format = "thingsboard"
credentials_file = "credentials.toml"
linger = "50ms"
"""
            service = Service(load_config(write_site(tmp_path, config)))
            async with running(service):
                await service.hub.publish(
                    [
                        Reading("meter/power", 1200, T0, "W"),
                        Reading("meter/on", True, T0),
                        Reading("meter/power", 1250, T0 + 1, "W"),
                    ]
                )
                await wait_until(lambda: sum(len(p) for _, p in telemetry.payloads) >= 2)
                health = service.health()["components"]["upstreams"]["tb"]
        finally:
            await asyncio.wait_for(server.shutdown(), 10)
        assert telemetry.payloads == [
            (
                50,
                [
                    {"ts": int(T0 * 1000), "values": {"meter/power": 1200, "meter/on": True}},
                    {"ts": int(T0 * 1000) + 1000, "values": {"meter/power": 1250}},
                ],
            )
        ]
        assert "A1_TEST_TOKEN" not in json.dumps(health)

    run(main())
