"""Per-upstream include/exclude: each platform gets its own points, with its own cursor."""

from __future__ import annotations

import asyncio

import pytest

from gateway.coap.uplink_select import PointFilter
from gateway.config import load_config
from gateway.model import Reading
from gateway.problems import ConfigError
from gateway.service import Service
from tests.conftest import running, wait_until, write_site

from .receiver import Receiver, free_udp_port

T0 = 1_767_225_600.0


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 120))


def upstream(name: str, uri: str, extra: str = "") -> str:
    return f'''
[[upstreams]]
name = "{name}"
uri = "{uri}"
linger = "20ms"
retry_min = "50ms"
retry_max = "200ms"
{extra}
'''


def city(count: int, start: int = 0) -> list[Reading]:
    """Energy meters and lamps interleaved, as one gateway's buffer holds them."""
    out = []
    for i in range(start, start + count):
        if i % 2:
            out.append(Reading(f"meter-{i % 3}/energy", float(i), T0 + i, "kWh"))
        else:
            out.append(Reading(f"lamp-{i % 5}/level", i % 100, T0 + i, "%"))
    return out


def names(received) -> set[str]:
    return {name.removeprefix("test-site/") for name, _, _ in received.accepted}


def test_filter_semantics():
    energy = PointFilter(include=("meter-*/*",))
    assert energy.matches("meter-1/energy") and not energy.matches("lamp-1/level")
    not_debug = PointFilter(exclude=("*/debug_*", "events/*"))
    assert not_debug.matches("lamp-1/level")
    assert not not_debug.matches("lamp-1/debug_rssi") and not not_debug.matches("events/actuation")
    both = PointFilter(include=("lamp-*",), exclude=("lamp-9/*",))
    assert both.matches("lamp-1/level") and not both.matches("lamp-9/level")
    assert PointFilter().everything and PointFilter().matches("anything/at_all")
    assert energy.unmatched(["lamp-1/level"]) == ["meter-*/*"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("include = []", "is empty, so this upstream would receive nothing"),
        ("include = [3]", "item 1 must be a point name or glob"),
        ('exclude = ["lamp-1"]', "'lamp-1' names no point: use device/point or a glob such as 'lamp-1/*'"),
        ('include = "lamp-*/*"', "upstreams[0].include"),
    ],
)
def test_selection_errors_name_the_key(tmp_path, body, message):
    with pytest.raises(ConfigError) as info:
        load_config(write_site(tmp_path, upstream("cloud", "coap://127.0.0.1/x", body)))
    assert message in str(info.value)
    assert "upstreams[0]" in str(info.value)


def test_energy_and_lighting_go_to_different_platforms_each_with_its_own_cursor(tmp_path):
    async def main():
        async with Receiver() as energy_rx, Receiver() as lighting_rx, Receiver() as all_rx:
            config = (
                upstream("energy", energy_rx.uri, 'include = ["meter-*/*"]')
                + upstream("lighting", lighting_rx.uri, 'include = ["lamp-*/*"]\nexclude = ["lamp-4/*"]')
                + upstream("everything", all_rx.uri)
            )
            service = Service(load_config(write_site(tmp_path, config)))
            sent = city(400)
            async with running(service):
                store = service.store
                assert {"uplink:energy", "uplink:lighting", "uplink:everything"} <= set(store.consumers)
                await service.hub.publish(sent)
                uplinks = service.components["upstreams"].uplinks
                await wait_until(lambda: store.last_seq == len(sent))
                await wait_until(
                    lambda: all(u.cursor == store.last_seq for u in uplinks.values()), timeout=60
                )
                for name in uplinks:
                    assert await store.get_cursor(f"uplink:{name}") == store.last_seq
                health = service.health()["components"]["upstreams"]
        energy = {r.point for r in sent if r.point.startswith("meter-")}
        lighting = {r.point for r in sent if r.point.startswith("lamp-") and r.point != "lamp-4/level"}
        assert names(energy_rx.received) == energy
        assert names(lighting_rx.received) == lighting
        assert names(all_rx.received) == {r.point for r in sent}
        assert len(energy_rx.received.accepted) == sum(r.point in energy for r in sent)
        assert len(lighting_rx.received.accepted) == sum(r.point in lighting for r in sent)
        for rx in (energy_rx, lighting_rx, all_rx):
            assert rx.received.duplicates == []
            assert rx.received.batches == list(range(1, len(rx.received.batches) + 1))
            assert rx.received.dropped == {}  # left out is not lost
        assert health["energy"]["include"] == ["meter-*/*"]
        assert health["lighting"]["exclude"] == ["lamp-4/*"]

    run(main())


def test_an_upstream_that_takes_none_of_the_buffer_does_not_hold_retention(tmp_path):
    async def main():
        async with Receiver() as rx:
            config = upstream("lighting", rx.uri, 'include = ["lamp-*/*"]')
            service = Service(load_config(write_site(tmp_path, config)))
            async with running(service):
                await service.hub.publish([r for r in city(200) if r.point.startswith("meter-")])
                await wait_until(lambda: service.store.last_seq == 100)
                last = service.store.last_seq
                # The first pass is saved at once, so retention may reclaim those readings.
                for _ in range(1000):
                    if await service.store.get_cursor("uplink:lighting") == last:
                        break
                    await asyncio.sleep(0.02)
                assert await service.store.get_cursor("uplink:lighting") == last
        assert rx.received.batches == []

    run(main())


def test_a_changed_selection_passes_by_an_unsent_batch_and_keeps_its_number(tmp_path):
    """Batch 1 was in flight (no answer) when include changed so that it takes none of it:
    after the restart that range is passed by and the next batch sent is still number 1."""
    dead = f"coap://127.0.0.1:{free_udp_port()}/ingest"

    async def main():
        service = Service(load_config(write_site(tmp_path, upstream("cloud", dead, 'timeout = "1s"'))))
        async with running(service):
            await service.hub.publish(
                [Reading("meter-1/energy", 1.0, T0), Reading("meter-1/energy", 2.0, T0 + 1)]
            )
            cloud = service.components["upstreams"].uplinks["cloud"]
            await wait_until(lambda: cloud.failures_in_row >= 1, timeout=30)
            assert cloud._inflight is not None and cloud._inflight[0] == 1
        async with Receiver() as rx:
            config = upstream("cloud", rx.uri, 'include = ["lamp-*/*"]')
            service = Service(load_config(write_site(tmp_path, config)))
            async with running(service):
                cloud = service.components["upstreams"].uplinks["cloud"]
                await wait_until(lambda: cloud.cursor == 2 and cloud._inflight is None, timeout=30)
                await service.hub.publish([Reading("lamp-1/level", 80, T0 + 2)])
                await wait_until(lambda: len(rx.received.accepted) == 1, timeout=30)
                # the receiver records the batch before the gateway has its answer
                await wait_until(lambda: cloud.cursor == service.store.last_seq, timeout=30)
                assert await service.store.get_cursor("uplink:cloud") == service.store.last_seq
        assert rx.received.batches == [1]
        assert [(n, v) for n, v, _ in rx.received.accepted] == [("test-site/lamp-1/level", 80)]

    run(main())
