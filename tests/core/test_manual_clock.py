"""The tests' clock: time moves only when told, and advance returns once the loop is quiet."""

import asyncio

from gateway.clock import ManualClock


def test_manual_clock_settles_only_when_every_woken_task_waits_again():
    """ManualClock.advance returns once the loop is quiet, however many hops a woken task takes."""

    async def scenario():
        clock = ManualClock()
        steps: list[int] = []

        async def woken_then_busy():
            await clock.sleep(5)
            for step in range(1000):  # far more than the 20 yields advance used to allow
                await asyncio.sleep(0)
                steps.append(step)

        asyncio.create_task(woken_then_busy())
        await clock.settle()
        assert steps == []  # asleep on the clock: quiet
        await clock.advance(5)
        assert len(steps) == 1000

    asyncio.run(scenario())
