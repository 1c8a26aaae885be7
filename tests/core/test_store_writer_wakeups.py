"""The store's writer sleeps on events: no polling while a partial batch waits for its interval."""

import asyncio

from gateway.model import Reading
from gateway.store import Database, Store
from gateway.store.config import StoreConfig


def test_writer_does_not_poll_while_a_partial_batch_waits_and_commits_a_full_one_at_once(
    tmp_path, monkeypatch
):
    config = StoreConfig(flush_interval=0.5, flush_readings=100, queue_size=10_000)
    real_sleep = asyncio.sleep
    sleeps = []

    async def counting_sleep(delay, *args, **kwargs):
        sleeps.append(delay)
        return await real_sleep(delay, *args, **kwargs)

    async def scenario():
        store = Store(tmp_path, config)
        await store.open()
        writer = asyncio.create_task(store.run())
        monkeypatch.setattr(asyncio, "sleep", counting_sleep)
        await store.put([Reading("d/p", 1.0, 100.0)])
        assert await store.wait_committed(0, timeout=10) == 1  # the interval ran out
        assert sleeps == []  # the writer waited on an event, never on a polling sleep

        # A full batch does not wait out a long interval.
        store.config = StoreConfig(flush_interval=3600, flush_readings=100, queue_size=10_000)
        await store.put([Reading("d/p", float(i), 101.0 + i) for i in range(100)])
        assert await store.wait_committed(1, timeout=10) == 101
        monkeypatch.undo()
        writer.cancel()
        await store.close()

    asyncio.run(scenario())
    assert Database(tmp_path / "buffer.db").count() == 101


def test_a_commit_whose_flush_is_cancelled_is_booked_once_not_inserted_twice(tmp_path, monkeypatch):
    """Shutdown cancels the writer loop mid-commit; the final flush must not insert it again."""
    import threading

    started, release = threading.Event(), threading.Event()
    real_insert = Database.insert

    def slow_insert(self, batch, **kwargs):
        started.set()
        release.wait(10)
        return real_insert(self, batch, **kwargs)

    async def scenario():
        store = Store(tmp_path, StoreConfig(flush_interval=0.01, flush_readings=100, queue_size=10_000))
        await store.open()
        monkeypatch.setattr(Database, "insert", slow_insert)
        writer = asyncio.create_task(store.run())
        await store.put([Reading("d/p", float(i), 100.0 + i) for i in range(150)])
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        writer.cancel()  # as the service's TaskGroup does on SIGTERM
        release.set()
        assert await store.close(timeout=10) is True

    asyncio.run(scenario())
    values = [r.value for r in Database(tmp_path / "buffer.db").read_after(0, 1000)]
    assert values == [float(i) for i in range(150)]
