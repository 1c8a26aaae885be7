"""The reading hub: drivers publish batches, the hub hands them to the store and subscribers.

Every queue is bounded. Subscribers that must see every reading (rules) apply back-pressure;
live views (Observe) drop their oldest batches instead. The store never holds up a
subscriber: a batch reaches the rules whether or not the store's queue has room for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .model import Reading

log = logging.getLogger("gateway.hub")

Overflow = Literal["block", "drop_oldest"]


class Buffer(Protocol):
    """What the hub needs of the store (see ``Store.offer``, ``admit`` and ``refuse``)."""

    def offer(self, batch: Sequence[Reading]) -> bool: ...
    async def admit(self, batch: Sequence[Reading]) -> bool: ...
    def refuse(self, batch: Sequence[Reading]) -> None: ...


@dataclass(eq=False)
class Subscription:
    """A bounded queue of batches for one consumer."""

    name: str
    maxsize: int
    overflow: Overflow
    accepts: Callable[[Reading], bool] | None = None
    queue: asyncio.Queue[Sequence[Reading]] = field(init=False)
    dropped_batches: int = 0
    delivered_batches: int = 0

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.maxsize)

    async def offer(self, batch: Sequence[Reading]) -> None:
        batch = self._accepted(batch)
        if not batch:
            return
        if self.overflow == "block":
            await self.queue.put(batch)
        else:
            self._drop_oldest_while_full()
            self.queue.put_nowait(batch)
        self.delivered_batches += 1

    def offer_nowait(self, batch: Sequence[Reading]) -> None:
        """Like ``offer`` but never waits: a full blocking queue drops this batch (counted)."""
        batch = self._accepted(batch)
        if not batch:
            return
        if self.overflow == "block":
            if self.queue.full():
                self.dropped_batches += 1
                return
        else:
            self._drop_oldest_while_full()
        self.queue.put_nowait(batch)
        self.delivered_batches += 1

    def _accepted(self, batch: Sequence[Reading]) -> Sequence[Reading]:
        return batch if self.accepts is None else [r for r in batch if self.accepts(r)]

    def _drop_oldest_while_full(self) -> None:
        while self.queue.full():
            self.queue.get_nowait()
            self.dropped_batches += 1

    async def get(self) -> Sequence[Reading]:
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[Sequence[Reading]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Sequence[Reading]]:
        while True:
            yield await self.queue.get()


class Hub:
    """Where readings go after a driver publishes them: the store's queue first, then every
    subscriber (rules, Observe, the console), and the latest value of each point."""

    def __init__(self, buffer: Buffer):
        """``buffer`` is the store. A batch is queued for it before anyone acts on it when
        its queue has room; when it has none, subscribers get the batch first and only then
        does the publisher wait for room (``Store.admit``), so control never waits on a disk."""
        self._buffer = buffer
        self._subscriptions: list[Subscription] = []
        self.latest: dict[str, Reading] = {}
        self.published_readings = 0

    def subscribe(
        self,
        name: str,
        *,
        maxsize: int = 256,
        overflow: Overflow = "block",
        accepts: Callable[[Reading], bool] | None = None,
    ) -> Subscription:
        sub = Subscription(name, maxsize, overflow, accepts)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    async def publish(self, batch: Sequence[Reading]) -> None:
        """A driver's batch: buffered (with back-pressure while the store commits) and delivered."""
        if not batch:
            return
        queued = self._buffer.offer(batch)
        self._update_latest(batch)
        for sub in tuple(self._subscriptions):
            await sub.offer(batch)
        if not queued:
            await self._buffer.admit(batch)

    def publish_nowait(self, batch: Sequence[Reading]) -> bool:
        """A record (actuation, rule output): best effort, never waits on anyone.

        Returns False when the store's queue had no room; the batch is then counted as
        dropped by the store but still reaches the subscribers that have room."""
        if not batch:
            return True
        queued = self._buffer.offer(batch)
        if not queued:
            self._buffer.refuse(batch)
        self._update_latest(batch)
        for sub in tuple(self._subscriptions):
            sub.offer_nowait(batch)
        return queued

    def _update_latest(self, batch: Sequence[Reading]) -> None:
        latest = self.latest
        for reading in batch:
            current = latest.get(reading.point)
            if current is None or reading.ts >= current.ts:
                latest[reading.point] = reading
        self.published_readings += len(batch)

    def health(self) -> dict[str, object]:
        return {
            "published_readings": self.published_readings,
            "points": len(self.latest),
            "subscribers": {
                s.name: {
                    "queued": s.queue.qsize(),
                    "maxsize": s.maxsize,
                    "dropped_batches": s.dropped_batches,
                }
                for s in self._subscriptions
            },
        }
