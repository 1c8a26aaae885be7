"""The async face of the buffer: group commit, admission to its bounded queue, cursors, retention.

Writes run on one dedicated thread and reads on another, so fsync on an SD card never
stalls the event loop and a long query never delays a commit.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..model import Reading, StoredReading
from .config import StoreConfig
from .database import (
    DROPPED_UNFORWARDED,
    EVICTED_AGE,
    EVICTED_FORWARDED,
    Database,
    RetentionResult,
    StoreFullError,
)

log = logging.getLogger("gateway.store")
T = TypeVar("T")
#: why readings left the buffer; only the first means a reading an upstream never acknowledged
REMOVAL_COUNTERS = (DROPPED_UNFORWARDED, EVICTED_FORWARDED, EVICTED_AGE)

DB_FILENAME = "buffer.db"
#: a full queue whose commits have made no progress for this long (or whose last commit
#: failed) is stalled: producers stop waiting for room and new readings are turned away
STALL_AFTER = 2.0


class Store:
    """The buffer: every reading is committed to SQLite by one writer thread (group commits)
    before anything is forwarded; reads run on a reader thread, never on the event loop."""

    def __init__(self, data_dir: Path, config: StoreConfig, *, now: Callable[[], float] = time.time):
        self.path = data_dir / DB_FILENAME
        self.config = config
        self._now = now
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="store-reader")
        self._wdb: Database | None = None
        self._rdb: Database | None = None
        self._pending: list[Reading] = []
        self._space = asyncio.Condition()
        self._has_pending = asyncio.Event()
        #: set once ``flush_readings`` are queued, so the writer commits without waiting out
        #: ``flush_interval``; the writer sleeps on it instead of polling the queue
        self._batch_ready = asyncio.Event()
        self._committed = asyncio.Condition()
        self._flush_lock = asyncio.Lock()
        self._in_flight: asyncio.Future[int] | None = None
        #: names of cursors whose readings must be forwarded before eviction
        self.consumers: list[str] = []
        self.last_seq = 0
        self.committed_readings = 0
        self.commits = 0
        #: the last commit or retention error; cleared by the next successful commit
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.full = False
        #: readings turned away because the queue was full and the store stalled
        self.dropped_readings = 0
        self._dropped_unrecorded = 0  # not yet added to the counters table
        self._refusing = False
        self._full_since: float | None = None  # monotonic time the queue was first seen full
        self._committed_at = 0.0  # monotonic time of the last successful commit
        self.last_retention: RetentionResult | None = None
        #: totals since the buffer was created (the ``counters`` table), kept here for health
        self.removed: dict[str, int] = dict.fromkeys(REMOVAL_COUNTERS, 0)

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wdb = await self._on_writer(lambda: Database(self.path))
        self._rdb = await self._on_reader(lambda: Database(self.path, readonly=True))
        self.last_seq = await self._on_writer(self._wdb.last_seq)
        counters = await self._on_writer(self._wdb.counters)
        self.removed = {name: counters.get(name, 0) for name in REMOVAL_COUNTERS}

    async def close(self, timeout: float | None = None) -> bool:
        """Flush everything pending, checkpoint, then close. Called on graceful shutdown.

        With ``timeout``, gives up on a writer that does not answer in time (a hung SD card)
        and returns False: what is committed stays committed, the readings still queued are
        logged as lost, and the caller must exit without waiting for the writer thread.
        A disk that still refuses commits cannot take what is pending either: that is logged
        with the count, and the store still closes cleanly (a stop must never crash)."""
        try:
            async with asyncio.timeout(timeout):
                try:
                    await self.flush()
                except Exception as exc:  # noqa: BLE001 - full or failing disk at shutdown
                    log.error(
                        "event=store_close_unflushed path=%s lost_readings=%d error=%r",
                        self.path,
                        len(self._pending),
                        str(exc),
                    )
                if self._wdb is not None:
                    wdb = self._wdb

                    def checkpoint_and_close() -> None:
                        _checkpoint_if_possible(wdb)
                        wdb.close()

                    await self._on_writer(checkpoint_and_close)
                if self._rdb is not None:
                    await self._on_reader(self._rdb.close)
        except TimeoutError:
            log.error(
                "event=store_close_abandoned path=%s reason=writer_unresponsive "
                "queued_readings_lost=%d last_seq=%d",
                self.path,
                len(self._pending),
                self.last_seq,
            )
            self._writer.shutdown(wait=False, cancel_futures=True)
            self._reader.shutdown(wait=False, cancel_futures=True)
            return False
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        return True

    async def _on_writer(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn)

    async def _on_reader(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn)

    @property
    def wdb(self) -> Database:
        assert self._wdb is not None, "store not open"
        return self._wdb

    @property
    def rdb(self) -> Database:
        assert self._rdb is not None, "store not open"
        return self._rdb

    # -- ingest ---------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def put(self, batch: Sequence[Reading]) -> None:
        """Queue a batch for the next group commit; waits while the queue is full, however long."""
        if not batch:
            return
        async with self._space:
            await self._space.wait_for(lambda: len(self._pending) < self.config.queue_size)
            self._pending.extend(batch)
        self._has_pending.set()
        if len(self._pending) >= self.config.flush_readings:
            self._batch_ready.set()

    def offer(self, batch: Sequence[Reading]) -> bool:
        """Queue a batch if the queue has room; never waits. False: not queued, not counted."""
        if not batch:
            return True
        if len(self._pending) >= self.config.queue_size:
            if self._full_since is None:
                self._full_since = time.monotonic()
            return False
        self._queue(batch)
        return True

    async def admit(self, batch: Sequence[Reading]) -> bool:
        """Queue a batch, waiting for room while commits make progress (back-pressure).

        Once the store is stalled (see ``stalled``) the batch is turned away and counted
        instead: a producer must never wait on a disk that does not commit. Returns whether
        the batch was queued; a queued reading is committed once the disk allows it.
        """
        if self.offer(batch):
            return True
        async with self._space:
            while len(self._pending) >= self.config.queue_size:
                if self.stalled:
                    self.refuse(batch)
                    return False
                since = max(self._full_since or 0.0, self._committed_at)
                wait = max(since + STALL_AFTER - time.monotonic(), 0.01)
                try:
                    async with asyncio.timeout(wait):
                        await self._space.wait()
                except TimeoutError:
                    pass
            self._queue(batch)
        return True

    def _queue(self, batch: Sequence[Reading]) -> None:
        self._pending.extend(batch)
        self._has_pending.set()
        if len(self._pending) >= self.config.flush_readings:
            self._batch_ready.set()

    def refuse(self, batch: Sequence[Reading]) -> None:
        """Count a batch that was not queued (logged once per stall, kept in health and counters)."""
        self.dropped_readings += len(batch)
        self._dropped_unrecorded += len(batch)
        if not self._refusing:
            self._refusing = True
            log.error(
                "event=store_refusing_readings path=%s pending=%d queue_size=%d error=%r",
                self.path,
                len(self._pending),
                self.config.queue_size,
                self.last_error or "no commit",
            )

    @property
    def stalled(self) -> bool:
        """The queue is full and either the last commit failed or none succeeded for STALL_AFTER."""
        if self._full_since is None or len(self._pending) < self.config.queue_size:
            return False
        if self.last_error is not None:
            return True
        since = max(self._full_since, self._committed_at)
        return time.monotonic() - since >= STALL_AFTER

    async def run(self) -> None:
        """The group-commit loop: flush every ``flush_interval`` or ``flush_readings``."""
        backoff = 0.5
        while True:
            await self._has_pending.wait()
            if len(self._pending) < self.config.flush_readings:
                # One wake-up per commit: when the batch fills or the interval ends.
                self._batch_ready.clear()
                try:
                    async with asyncio.timeout(self.config.flush_interval):
                        await self._batch_ready.wait()
                except TimeoutError:
                    pass
            try:
                await self.flush()
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - any disk fault: keep running, keep data
                self._record_error(exc)
                await self._relieve_full_disk()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def flush(self) -> None:
        """Commit what is pending now. On failure the readings stay queued, in order."""
        async with self._flush_lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        if self._in_flight is not None:
            # A commit whose flush was cancelled may still be running on the writer thread:
            # let it finish (its callback takes its readings off the queue) so that they are
            # not inserted twice.
            await asyncio.shield(self._in_flight)
        while self._pending:
            batch = self._pending[: max(self.config.flush_readings, 1)]
            dropped = self._dropped_unrecorded
            commit = asyncio.get_running_loop().run_in_executor(
                self._writer, functools.partial(self.wdb.insert, batch, dropped_queue_full=dropped)
            )
            self._in_flight = commit
            commit.add_done_callback(functools.partial(self._batch_committed, len(batch), dropped))
            # Shielded: a cancelled flush (shutdown) must not forget a commit that happens.
            await asyncio.shield(commit)
            async with self._space:
                self._space.notify_all()
            async with self._committed:
                self._committed.notify_all()
        self._has_pending.clear()

    def _batch_committed(self, count: int, dropped: int, commit: asyncio.Future[int]) -> None:
        """Book a finished commit, on the loop, whether or not its flush is still waiting."""
        self._in_flight = None
        if commit.cancelled() or commit.exception() is not None:
            return  # the readings stay queued, in order, for the next attempt
        del self._pending[:count]
        self._dropped_unrecorded -= dropped
        self.last_seq = commit.result()
        self.committed_readings += count
        self.commits += 1
        self._committed_at = time.monotonic()
        if len(self._pending) < self.config.queue_size:
            self._full_since = None
        if self.last_error is not None or self._refusing:
            log.info(
                "event=store_recovered path=%s pending=%d dropped_readings=%d",
                self.path,
                len(self._pending),
                self.dropped_readings,
            )
        self.full = False
        self.last_error = None
        self._refusing = False

    def _record_error(self, exc: BaseException) -> None:
        message = str(exc)
        if message != self.last_error:
            log.error(
                "event=store_write_failed path=%s pending=%d error=%r", self.path, len(self._pending), message
            )
        self.last_error = message
        self.last_error_at = self._now()
        self.full = isinstance(exc, StoreFullError)

    async def _relieve_full_disk(self) -> None:
        if not self.full:
            return
        try:
            await self.apply_retention()
        except Exception as exc:  # noqa: BLE001 - deleting can fail on a full disk too
            log.warning("event=retention_failed path=%s error=%r", self.path, str(exc))

    async def wait_committed(self, after: int, timeout: float | None = None) -> int:
        """Wait until a reading newer than ``after`` is committed; returns the last seq."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the wait completes, which hangs shutdown of whoever is waiting here.
        try:
            async with asyncio.timeout(timeout), self._committed:
                await self._committed.wait_for(lambda: self.last_seq > after)
        except TimeoutError:
            pass
        return self.last_seq

    # -- retention ------------------------------------------------------------------------

    async def apply_retention(self) -> RetentionResult:
        cfg = self.config
        consumers = list(self.consumers)
        result = await self._on_writer(
            lambda: self.wdb.apply_retention(
                now=self._now(),
                max_age=cfg.max_age,
                max_bytes=cfg.max_bytes,
                hard_max_bytes=cfg.hard_max_bytes,
                consumers=consumers,
            )
        )
        self.last_retention = result
        self.removed[DROPPED_UNFORWARDED] += result.dropped_unforwarded
        self.removed[EVICTED_FORWARDED] += result.evicted_forwarded
        self.removed[EVICTED_AGE] += result.evicted_age
        if result.dropped_unforwarded:
            log.warning(
                "event=unforwarded_dropped count=%d reason=hard_quota used_bytes=%d",
                result.dropped_unforwarded,
                result.used_bytes,
            )
        return result

    async def run_retention(self) -> None:
        while True:
            await asyncio.sleep(self.config.retention_interval)
            try:
                await self.apply_retention()
            except Exception as exc:  # noqa: BLE001
                self._record_error(exc)

    # -- queries and cursors --------------------------------------------------------------

    async def read_after(
        self, after: int, limit: int, points: Iterable[str] | None = None
    ) -> list[StoredReading]:
        pts = None if points is None else list(points)
        return await self._on_reader(lambda: self.rdb.read_after(after, limit, pts))

    async def latest(self, points: Iterable[str] | None = None) -> list[StoredReading]:
        pts = None if points is None else list(points)
        return await self._on_reader(lambda: self.rdb.latest(pts))

    async def history(
        self, point: str, start: float | None = None, end: float | None = None
    ) -> list[StoredReading]:
        return await self._on_reader(lambda: self.rdb.history(point, start, end))

    async def scan_newest(self, point: str, consume: Callable[[Iterator[StoredReading]], T]) -> T:
        """Run ``consume`` over ``point``'s readings, newest first, on the reader thread; it
        reads only as far as it iterates. ``consume`` must not touch event-loop state."""
        return await self._on_reader(lambda: consume(self.rdb.newest_first(point)))

    async def get_cursor(self, name: str) -> int | None:
        return await self._on_writer(lambda: self.wdb.get_cursor(name))

    async def set_cursor(self, name: str, seq: int) -> None:
        await self._on_writer(lambda: self.wdb.set_cursor(name, seq, self._now()))

    async def get_state(self, namespace: str, key: str) -> Any:
        return await self._on_writer(lambda: self.wdb.get_state(namespace, key))

    async def all_state(self, namespace: str) -> dict[str, Any]:
        return await self._on_writer(lambda: self.wdb.all_state(namespace))

    async def put_state(self, namespace: str, items: dict[str, Any]) -> None:
        """Durably write state keys (committed and fsynced when this returns)."""
        await self._on_writer(lambda: self.wdb.put_state(namespace, items, self._now()))

    async def counters(self) -> dict[str, int]:
        return await self._on_writer(self.wdb.counters)

    async def used_bytes(self) -> int:
        return await self._on_writer(self.wdb.used_bytes)

    def health(self) -> dict[str, Any]:
        retention = self.last_retention
        return {
            "path": str(self.path),
            "last_seq": self.last_seq,
            "pending": len(self._pending),
            "queue_size": self.config.queue_size,
            "committed_readings": self.committed_readings,
            "commits": self.commits,
            "full": self.full,
            "stalled": self.stalled,
            "dropped_readings": self.dropped_readings,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "used_bytes": retention.used_bytes if retention else None,
            "max_bytes": self.config.max_bytes,
            "hard_max_bytes": self.config.hard_max_bytes,
            # totals since the buffer was created, across restarts
            **self.removed,
        }


def _checkpoint_if_possible(wdb: Database) -> None:
    try:
        wdb.checkpoint()
    except sqlite3.Error as exc:  # the WAL stays and is replayed at the next open
        log.warning("event=checkpoint_failed path=%s error=%r", wdb.path, str(exc))
