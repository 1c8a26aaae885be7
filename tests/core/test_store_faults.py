"""A disk that stops committing: the store's bounded queue, what it turns away (counted), what it
keeps (committed later), and a health status that recovers with the disk."""

from __future__ import annotations

import asyncio

import pytest

from gateway.hub import Hub
from gateway.model import Reading
from gateway.service import Service
from gateway.store import Database, Store
from gateway.store import store as store_module
from gateway.store.config import StoreConfig
from tests.conftest import running, wait_until
from tests.core.disk import fill_disk, free_disk
from tests.core.test_store import readings

QUIET_LAMP = """
[[devices]]
name = "lamp"
driver = "simulated"
interval = "1h"
[devices.options]
[[devices.options.points]]
name = "level"
writable = true
initial = 0
"""


@pytest.fixture
def short_stall(monkeypatch):
    monkeypatch.setattr(store_module, "STALL_AFTER", 0.2)


def test_a_full_queue_with_no_commit_progress_turns_batches_away_and_keeps_what_it_took(
    tmp_path, short_stall
):
    config = StoreConfig(flush_interval=0.01, flush_readings=100, queue_size=100)

    async def scenario():
        store = Store(tmp_path, config)
        await store.open()
        assert store.offer(readings(100))
        assert not store.offer(readings(1, start=100))  # full: not queued, not yet counted
        assert store.dropped_readings == 0
        # no committer runs: after STALL_AFTER without progress the batch is turned away
        assert await asyncio.wait_for(store.admit(readings(5, start=100)), 10) is False
        assert store.stalled and store.dropped_readings == 5
        assert store.health()["stalled"] is True and store.health()["dropped_readings"] == 5
        assert await store.admit(readings(5, start=105)) is False  # stalled: no wait at all
        runner = asyncio.create_task(store.run())
        await store.wait_committed(99, timeout=10)
        assert not store.stalled
        assert await store.admit(readings(1, start=200))
        await store.wait_committed(100, timeout=10)
        runner.cancel()
        await store.close()
        db = Database(tmp_path / "buffer.db")
        assert [r.value for r in db.read_after(0, 1000)] == [*map(float, range(100)), 200.0]
        assert db.counter("dropped_queue_full") == 10

    asyncio.run(scenario())


def test_admit_is_back_pressure_while_the_store_commits(tmp_path):
    config = StoreConfig(flush_interval=0.01, flush_readings=50, queue_size=100)

    async def scenario():
        store = Store(tmp_path, config)
        await store.open()
        runner = asyncio.create_task(store.run())
        for start in range(0, 5000, 100):  # far faster than the group commit: producers wait
            assert await store.admit(readings(100, start=start))
        await store.wait_committed(4999, timeout=30)
        runner.cancel()
        await store.close()
        assert store.dropped_readings == 0
        assert Database(tmp_path / "buffer.db").count() == 5000

    asyncio.run(scenario())


def test_subscribers_get_a_batch_before_the_publisher_waits_for_room_in_the_store(tmp_path, short_stall):
    config = StoreConfig(flush_interval=0.01, flush_readings=100, queue_size=100)

    async def scenario():
        store = Store(tmp_path, config)
        await store.open()
        hub = Hub(store)
        rules = hub.subscribe("rules", maxsize=8, overflow="block")
        await hub.publish(readings(100))
        assert len(await rules.get()) == 100
        publishing = asyncio.create_task(hub.publish([Reading("dev/p", 1.0, 1_767_300_000.0)]))
        assert (await asyncio.wait_for(rules.get(), 10))[0].ts == 1_767_300_000.0
        assert hub.latest["dev/p"].ts == 1_767_300_000.0
        await asyncio.wait_for(publishing, 10)  # no committer: the store stalled, batch counted
        assert store.dropped_readings == 1
        assert hub.publish_nowait([Reading("events/actuation", "{}", 1_767_300_001.0)]) is False
        assert store.dropped_readings == 2
        await store.close()

    asyncio.run(scenario())


def test_health_is_ok_again_with_the_first_commit_after_the_disk_returns(site):
    async def scenario():
        service = Service(site(QUIET_LAMP))
        async with running(service):
            store = service.store
            await wait_until(lambda: store.last_seq > 0)
            await fill_disk(store)
            try:
                await service.hub.publish(readings(3000, point="lamp/other"))
                await wait_until(lambda: store.last_error is not None)
                assert service.health()["status"] == "degraded"
            finally:
                await free_disk(store)
            await wait_until(lambda: store.pending == 0, timeout=30)
            assert store.health()["last_error"] is None
            # readings keep arriving, so something is almost always pending: still ok
            await service.hub.publish([Reading("lamp/other", 1.0, 1_767_300_000.0)])
            assert store.pending == 1
            assert service.health()["status"] == "ok"

    asyncio.run(scenario())


def test_a_stop_while_the_disk_is_still_full_shuts_down_cleanly_and_says_what_was_lost(site, caplog):
    async def scenario():
        service = Service(site(QUIET_LAMP))
        async with running(service):
            await wait_until(lambda: service.store.last_seq > 0)
            await fill_disk(service.store)
            await service.hub.publish(readings(3000, point="lamp/other"))
            await wait_until(lambda: service.store.last_error is not None)
        # leaving ``running`` stopped the service: it returned instead of raising

    asyncio.run(scenario())
    assert any(
        "event=store_close_unflushed" in r.getMessage() and "lost_readings=" in r.getMessage()
        for r in caplog.records
    )
