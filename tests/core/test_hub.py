import asyncio

from gateway.hub import Hub
from gateway.model import Reading


class _Unbounded:
    """A buffer that always has room (the store's own behaviour is tested with the store)."""

    def offer(self, batch):
        return True

    async def admit(self, batch):
        return True

    def refuse(self, batch):
        raise AssertionError("an unbounded buffer never refuses")


def test_block_subscriber_applies_back_pressure_and_drop_oldest_does_not():
    async def scenario():
        hub = Hub(_Unbounded())
        rules = hub.subscribe("rules", maxsize=2, overflow="block")
        live = hub.subscribe("observe", maxsize=2, overflow="drop_oldest")
        await hub.publish([Reading("a/x", 1, 1.0)])
        await hub.publish([Reading("a/x", 2, 2.0)])
        third = asyncio.create_task(hub.publish([Reading("a/x", 3, 3.0)]))
        await asyncio.sleep(0.05)
        assert not third.done()  # the blocking subscriber is full: publisher waits
        assert (await rules.get())[0].value == 1
        await asyncio.wait_for(third, 5)
        assert live.dropped_batches == 1
        assert [(await live.get())[0].value for _ in range(2)] == [2, 3]
        assert hub.latest["a/x"].value == 3

    asyncio.run(scenario())


def test_latest_ignores_out_of_order_older_readings():
    async def scenario():
        hub = Hub(_Unbounded())
        await hub.publish([Reading("a/x", 5, 10.0), Reading("a/x", 4, 9.0)])
        assert hub.latest["a/x"].value == 5

    asyncio.run(scenario())


def test_filtered_subscription_only_sees_its_points():
    async def scenario():
        hub = Hub(_Unbounded())
        sub = hub.subscribe("one", accepts=lambda r: r.point == "a/x")
        await hub.publish([Reading("a/x", 1, 1.0), Reading("b/y", 2, 1.0)])
        await hub.publish([Reading("b/y", 3, 2.0)])
        assert sub.queue.qsize() == 1
        assert [r.point for r in await sub.get()] == ["a/x"]

    asyncio.run(scenario())
