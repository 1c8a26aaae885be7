"""Readings relayed from a neighbouring gateway are not forwarded upstream by this one (the
neighbour forwards its own), unless ``forward_upstream = true``; batch numbers stay contiguous."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.config import load_config
from gateway.model import Reading
from gateway.service import Service
from tests.coap_uplink.receiver import Receiver
from tests.conftest import running, wait_until, write_site

from .helpers import free_port


def site(tmp_path, receiver_uri: str, forward: bool | None) -> Service:
    option = "" if forward is None else f"forward_upstream = {str(forward).lower()}"
    return Service(
        load_config(
            write_site(
                tmp_path,
                f"""
[[devices]]
name = "cabinet-b"
driver = "coap"
[devices.options]
peer = "gateway"
uri = "coap://127.0.0.1:{free_port()}"
retry_min = "1s"
{option}
[[devices.options.points]]
name = "loop/occupied"
kind = "bool"

[[upstreams]]
name = "cloud"
uri = "{receiver_uri}"
batch_size = 10
linger = "20ms"
""",
            )
        )
    )


@pytest.mark.parametrize("forward", [None, True])
def test_relayed_readings_are_skipped_unless_configured(tmp_path, forward):
    async def scenario() -> None:
        async with Receiver() as receiver:
            service = site(tmp_path, receiver.uri, forward)
            async with running(service):
                now = time.time()
                # a run of relayed readings only, then readings of this gateway's own, mixed
                await service.hub.publish(
                    [Reading("cabinet-b/loop/occupied", i % 2 == 0, now + i) for i in range(30)]
                )
                await asyncio.sleep(0.3)
                await service.hub.publish(
                    [Reading("virtual/count", i, now + 40 + i) for i in range(5)]
                    + [Reading("cabinet-b/loop/occupied", True, now + 50)]
                    + [Reading("virtual/count", 99, now + 60)]
                )
                await wait_until(
                    lambda: (
                        sum(1 for n, _, _ in receiver.received.accepted if n == "test-site/virtual/count")
                        == 6
                    ),
                    timeout=20,
                )
                await asyncio.sleep(0.3)
                health = service.health()["components"]["upstreams"]["cloud"]
        loop = [r for r in receiver.received.accepted if r[0] == "test-site/cabinet-b/loop/occupied"]
        own = [r for r in receiver.received.accepted if r[0] == "test-site/virtual/count"]
        assert len(own) == 6
        if forward:
            assert len(loop) == 31
            assert health["readings_skipped_relayed"] == 0
        else:
            # nothing of the neighbour's, not even the driver's own online point for it
            assert {r[0] for r in receiver.received.accepted} == {"test-site/virtual/count"}
            assert health["readings_skipped_relayed"] >= 31
        batches = receiver.received.batches
        assert batches == list(range(1, len(batches) + 1))  # no number spent on a skipped run
        assert not receiver.received.dropped  # nothing announced as lost

    asyncio.run(scenario())
