"""Readings the hard quota drops while the upstream is down: receivers see contiguous batch
numbers and an explicit announcement of what was lost at the gateway, across a restart too."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiocoap
import aiocoap.resource as resource
import pytest

from gateway.coap.senml import Dropped, decode_senml_cbor
from gateway.coap.uplink_format import dropped_in_range
from gateway.config import load_config
from gateway.service import Service
from gateway.store import Database, Store
from gateway.store.config import StoreConfig
from tests.conftest import SITE_HEADER, running, wait_until, write_site

from .receiver import Receiver, free_udp_port
from .test_uplink_aiocoap import TelemetryResource, readings, run
from .test_uplink_peers import ROOT, stop_process

#: small enough that a few thousand readings overflow it
QUOTA = 96 * 1024
IN_FLIGHT = 100
BACKLOG = 6000


def site(tmp_path: Path, port: int, fmt: str = "senml+cbor") -> Path:
    header = SITE_HEADER + f"max_bytes = {QUOTA}\nhard_max_bytes = {QUOTA}\n"
    body = f'''
[[upstreams]]
name = "cloud"
uri = "coap://127.0.0.1:{port}/ingest"
format = "{fmt}"
batch_size = {IN_FLIGHT}
backlog_batch_size = 10000
linger = "50ms"
retry_min = "50ms"
retry_max = "200ms"
'''
    return write_site(tmp_path, body, header=header)


async def overflow_while_down(service: Service) -> int:
    """Batch 1 (readings 1..100) goes in flight to an upstream that is down; then a backlog
    overflows the hard quota, which drops the oldest readings, the in-flight ones included.
    Returns how many were dropped (sequence numbers 1..that)."""
    cloud = service.components["upstreams"].uplinks["cloud"]
    await service.hub.publish(readings(IN_FLIGHT))
    await wait_until(lambda: cloud._inflight == (1, IN_FLIGHT) and cloud.attempts >= 1, timeout=30)
    await service.store.put(readings(BACKLOG, IN_FLIGHT))
    await service.store.flush()
    await service.store.apply_retention()
    dropped = service.store.health()["dropped_unforwarded"]
    oldest = (await service.store.read_after(0, 1))[0].seq
    assert IN_FLIGHT < dropped < IN_FLIGHT + BACKLOG and oldest == dropped + 1
    return int(dropped)


def test_drops_behind_the_in_flight_batch_are_announced_in_the_next_batch(tmp_path):
    async def main():
        port = free_udp_port()
        service = Service(load_config(site(tmp_path, port)))
        async with running(service):
            dropped = await overflow_while_down(service)
            cloud = service.components["upstreams"].uplinks["cloud"]
            async with Receiver(port) as rx:
                await wait_until(lambda: cloud.cursor == service.store.last_seq, timeout=60)
            health = service.health()
        got = rx.received
        assert got.batches == list(range(1, len(got.batches) + 1)) and got.duplicates == []
        # Batch 1 was already in memory: it goes out whole, with nothing to announce.
        assert got.sizes[1] == IN_FLIGHT
        assert got.dropped == {2: Dropped(dropped - IN_FLIGHT, IN_FLIGHT + 1, dropped)}
        assert len(got.accepted) == IN_FLIGHT + BACKLOG - (dropped - IN_FLIGHT)
        assert health["store"]["dropped_unforwarded"] == dropped
        assert health["components"]["upstreams"]["cloud"]["readings_dropped_announced"] == dropped - IN_FLIGHT

    run(main())


@pytest.mark.parametrize("fmt", ["senml+cbor", "senml+json"])
def test_after_a_restart_the_in_flight_number_is_resent_with_its_drops_announced(tmp_path, fmt):
    async def main():
        port = free_udp_port()
        service = Service(load_config(site(tmp_path, port, fmt)))
        async with running(service):
            dropped = await overflow_while_down(service)
        # Restarted: batch 1's saved range is 1..100, and none of it is left in the buffer.
        service = Service(load_config(site(tmp_path, port, fmt)))
        async with Receiver(port) as rx, running(service):
            assert service.health()["store"]["dropped_unforwarded"] == dropped  # from the buffer
            cloud = service.components["upstreams"].uplinks["cloud"]
            await wait_until(lambda: cloud.cursor == service.store.last_seq, timeout=60)
        got = rx.received
        assert got.batches == list(range(1, len(got.batches) + 1)) and got.duplicates == []
        assert got.sizes[1] == 0  # same number, nothing left
        assert got.dropped == {
            1: Dropped(IN_FLIGHT, 1, IN_FLIGHT),
            2: Dropped(dropped - IN_FLIGHT, IN_FLIGHT + 1, dropped),
        }
        assert len(got.accepted) == IN_FLIGHT + BACKLOG - dropped
        assert sum(d.count for d in got.dropped.values()) == dropped

    run(main())


def test_after_kill_9_the_in_flight_number_is_resent_with_its_drops_announced(tmp_path):
    port = free_udp_port()
    config = site(tmp_path, port)
    gateway = subprocess.Popen(
        [sys.executable, "-m", "tests.coap_uplink.overflowing_gateway", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert gateway.stdout is not None
        line = gateway.stdout.readline().split()
        assert line[:1] == ["dropped"], line
        dropped = int(line[1])
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
    finally:
        stop_process(gateway)

    async def main():
        service = Service(load_config(config))
        async with Receiver(port) as rx, running(service):
            cloud = service.components["upstreams"].uplinks["cloud"]
            await wait_until(lambda: cloud.cursor == service.store.last_seq, timeout=60)
            assert service.health()["store"]["dropped_unforwarded"] == dropped
        got = rx.received
        assert got.batches == list(range(1, len(got.batches) + 1)) and got.duplicates == []
        assert got.sizes[1] == 0
        assert got.dropped == {
            1: Dropped(IN_FLIGHT, 1, IN_FLIGHT),
            2: Dropped(dropped - IN_FLIGHT, IN_FLIGHT + 1, dropped),
        }
        assert len(got.accepted) == IN_FLIGHT + BACKLOG - dropped

    run(main())


@pytest.mark.skipif(shutil.which("coap-server-notls") is None, reason="libcoap3-bin not installed")
def test_libcoap_server_gets_contiguous_numbers_and_the_announcement_after_restart(tmp_path):
    port = free_udp_port()
    log_path = tmp_path / "coap-server.log"

    async def before_restart() -> int:
        service = Service(load_config(site(tmp_path, port)))
        async with running(service):
            return await overflow_while_down(service)

    async def after_restart() -> int:
        service = Service(load_config(site(tmp_path, port)))
        async with running(service):
            cloud = service.components["upstreams"].uplinks["cloud"]
            await wait_until(lambda: cloud.cursor == service.store.last_seq, timeout=60)
            return service.store.last_seq

    dropped = 0

    async def first() -> None:
        nonlocal dropped
        dropped = await before_restart()

    run(first())
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            ["coap-server-notls", "-A", "127.0.0.1", "-p", str(port), "-d", "4", "-v", "7"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        last_seq = 0

        async def second() -> None:
            nonlocal last_seq
            last_seq = await after_restart()

        run(second())
        fetched = tmp_path / "last.cbor"
        subprocess.run(
            [
                "coap-client-notls",
                "-m",
                "get",
                "-o",
                str(fetched),
                "-B",
                "10",
                f"coap://127.0.0.1:{port}/ingest",
            ],
            check=True,
            timeout=20,
        )
    finally:
        stop_process(server)
    # Everything left fits one backlog batch: libcoap holds batch 2, after the empty batch 1.
    pack = decode_senml_cbor(fetched.read_bytes())
    assert pack.batch is not None and pack.batch.seq == 2
    assert pack.dropped == Dropped(dropped - IN_FLIGHT, IN_FLIGHT + 1, dropped)
    assert len(pack.records) == last_seq - dropped
    finals = [
        line
        for line in log_path.read_text(errors="replace").splitlines()
        if "t:ACK c:2.01" in line or "t:ACK c:2.04" in line
    ]
    assert len(finals) == 2  # batches 1 and 2, nothing skipped or doubled


@pytest.mark.parametrize(
    "after, last, seqs, expected",
    [
        (0, 5, [1, 2, 3, 4, 5], None),
        (0, 5, [], Dropped(5, 1, 5)),
        (10, 20, [14, 15, 16, 17, 18, 19, 20], Dropped(3, 11, 13)),
        (10, 20, [11, 12, 13, 20], Dropped(6, 14, 19)),
        (10, 20, [11, 12], Dropped(8, 13, 20)),
        (0, 9, [1, 4, 5, 9], Dropped(5, 2, 8)),  # two gaps: the count, and the span
    ],
)
def test_dropped_in_range(after, last, seqs, expected):
    assert dropped_in_range(after, last, seqs) == expected


def test_after_a_restart_what_is_left_of_the_in_flight_range_goes_with_the_rest_announced(tmp_path):
    """The hard quota took only the oldest part of a backlog batch that was in flight."""

    async def main():
        port = free_udp_port()
        config = load_config(
            write_site(
                tmp_path,
                f"""
[[upstreams]]
name = "cloud"
uri = "coap://127.0.0.1:{port}/ingest"
backlog_batch_size = 5000
retry_min = "50ms"
retry_max = "200ms"
""",
            )
        )
        service = Service(config)
        await service.store.open()
        await service.store.put(readings(6000))  # a backlog, in the buffer at start
        await service.store.close()
        service = Service(config)
        async with running(service):
            cloud = service.components["upstreams"].uplinks["cloud"]
            await wait_until(lambda: cloud._inflight is not None and cloud.attempts >= 1, timeout=30)
            in_flight = cloud._inflight
        assert in_flight == (1, 5000)
        # Stopped; then the buffer is squeezed under a small hard quota by the store itself.
        used = Database(tmp_path / "data" / "buffer.db").used_bytes()
        squeezed = Store(
            tmp_path / "data", StoreConfig(max_bytes=used * 7 // 10, hard_max_bytes=used * 7 // 10)
        )
        squeezed.consumers.append("uplink:cloud")
        await squeezed.open()
        await squeezed.apply_retention()
        dropped = squeezed.removed["dropped_unforwarded"]
        await squeezed.close()
        assert 0 < dropped < 5000  # part of batch 1's range survived

        service = Service(config)
        async with Receiver(port) as rx, running(service):
            cloud = service.components["upstreams"].uplinks["cloud"]
            await wait_until(lambda: cloud.cursor == 6000, timeout=60)
        got = rx.received
        assert got.batches == list(range(1, len(got.batches) + 1)) and got.duplicates == []
        assert got.sizes[1] == 5000 - dropped
        assert got.dropped == {1: Dropped(dropped, 1, dropped)}
        assert len(got.accepted) == 6000 - dropped

    run(main())


def test_a_new_upstream_is_not_told_of_readings_evicted_before_it_existed(tmp_path):
    async def main():
        port = free_udp_port()
        data = tmp_path / "data"
        data.mkdir()
        store = Store(data, StoreConfig())
        await store.open()
        await store.put(readings(3000))
        await store.flush()
        used_before = await store.used_bytes()
        await store.close()
        # No upstream yet: everything counts as forwarded, and the soft quota evicts the oldest.
        store = Store(data, StoreConfig(max_bytes=used_before // 2, hard_max_bytes=used_before, max_age=None))
        await store.open()
        await store.apply_retention()
        evicted = store.removed["evicted_forwarded"]
        await store.close()
        assert 0 < evicted < 3000 and store.removed["dropped_unforwarded"] == 0

        service = Service(load_config(site(tmp_path, port)))
        async with Receiver(port) as rx, running(service):
            cloud = service.components["upstreams"].uplinks["cloud"]
            await wait_until(lambda: cloud.cursor == 3000, timeout=60)
        assert rx.received.dropped == {} and len(rx.received.accepted) == 3000 - evicted
        assert rx.received.batches == list(range(1, len(rx.received.batches) + 1))

    run(main())


def test_thingsboard_skips_a_fully_dropped_range_and_says_so_in_the_log(tmp_path, caplog):
    """No batch numbers and no place for an announcement: nothing is posted for the lost
    range, the rest arrives, and the log says the loss was not announced."""
    credentials = tmp_path / "credentials.toml"
    credentials.write_text('[cloud]\ntoken = "TB_TOKEN"\n')
    credentials.chmod(0o600)
    port = free_udp_port()
    header = SITE_HEADER + f"max_bytes = {QUOTA}\nhard_max_bytes = {QUOTA}\n"
    path = write_site(
        tmp_path,
        f"""
[[upstreams]]
name = "cloud"
uri = "coap://127.0.0.1:{port}"
format = "thingsboard"
credentials_file = "credentials.toml"
batch_size = {IN_FLIGHT}
linger = "50ms"
retry_min = "50ms"
retry_max = "200ms"
""",
        header=header,
    )

    async def main():
        service = Service(load_config(path))
        async with running(service):
            dropped = await overflow_while_down(service)
        telemetry = TelemetryResource()
        site_root = resource.Site()
        site_root.add_resource(["api", "v1", "TB_TOKEN", "telemetry"], telemetry)
        server = await aiocoap.Context.create_server_context(site_root, bind=("127.0.0.1", port))
        try:
            service = Service(load_config(path))
            async with running(service):
                cloud = service.components["upstreams"].uplinks["cloud"]
                await wait_until(lambda: cloud.cursor == service.store.last_seq, timeout=60)
                last_seq = service.store.last_seq
        finally:
            await server.shutdown()
        values = sum(len(entry["values"]) for _, payload in telemetry.payloads for entry in payload)
        assert values == last_seq - dropped
        assert "announced=false" in caplog.text

    run(main())
