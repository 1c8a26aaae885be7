"""The rules' command queue is bounded: a device that stops answering cannot make it grow
without limit, and when it answers again the newest wish for each point is what it gets."""

from __future__ import annotations

import asyncio
import time

from gateway.clock import ManualClock
from gateway.rules.component import COMMAND_QUEUE
from gateway.service import Service
from tests.conftest import running, wait_until
from tests.rules.helpers import level, publish

FOLLOW = """
[[rule]]
name = "follow"
[[rule.action]]
set = "lamp/level"
expr = "sensor/traffic * 10"
"""


def test_a_hung_device_cannot_grow_the_command_queue_and_gets_the_newest_value_after(rules_site):
    config = rules_site({"follow.toml": FOLLOW})

    async def scenario():
        service = Service(config, clock=ManualClock(time.time()))
        async with running(service):
            component = service.components["rules"]
            answering = asyncio.Event()
            real_write = service.devices.write

            async def hung_write(point, value):  # the lamp controller stops answering
                await answering.wait()
                await real_write(point, value)

            service.devices.write = hung_write
            for i in range(COMMAND_QUEUE + 200):
                await publish(service, "sensor/traffic", i % 7 + 1)
            await wait_until(lambda: component.counts["readings"] >= COMMAND_QUEUE + 200)
            assert component.health()["queued_commands"] <= COMMAND_QUEUE
            assert component.counts["dropped_commands"] > 0
            await publish(service, "sensor/traffic", 9)
            answering.set()
            await wait_until(lambda: level(service) == 90, timeout=30)

    asyncio.run(scenario())
