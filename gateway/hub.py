"""The reading hub: drivers publish batches, the hub hands them to the store and subscribers.

Every queue is bounded. The store and subscribers that must see every reading (rules,
uplinks) apply back-pressure; live views (Observe) drop their oldest batches instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .model import Reading

log = logging.getLogger("gateway.hub")

Overflow = Literal["block", "drop_oldest"]


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
        if self.accepts is not None:
            batch = [r for r in batch if self.accepts(r)]
            if not batch:
                return
        if self.overflow == "block":
            await self.queue.put(batch)
        else:
            while self.queue.full():
                self.queue.get_nowait()
                self.dropped_batches += 1
            self.queue.put_nowait(batch)
        self.delivered_batches += 1

    async def get(self) -> Sequence[Reading]:
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[Sequence[Reading]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Sequence[Reading]]:
        while True:
            yield await self.queue.get()


class Hub:
    def __init__(self, sink: Callable[[Sequence[Reading]], asyncio.Future[None] | object]):
        """``sink`` is the store's ``put``: awaited first, so a reading is queued for the
        buffer before anyone acts on it."""
        self._sink = sink
        self._subscriptions: list[Subscription] = []
        self.latest: dict[str, Reading] = {}
        self.published_readings = 0

    def subscribe(self, name: str, *, maxsize: int = 256, overflow: Overflow = "block",
                  accepts: Callable[[Reading], bool] | None = None) -> Subscription:
        sub = Subscription(name, maxsize, overflow, accepts)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    async def publish(self, batch: Sequence[Reading]) -> None:
        if not batch:
            return
        await self._sink(batch)  # type: ignore[misc]
        latest = self.latest
        for reading in batch:
            current = latest.get(reading.point)
            if current is None or reading.ts >= current.ts:
                latest[reading.point] = reading
        self.published_readings += len(batch)
        for sub in tuple(self._subscriptions):
            await sub.offer(batch)

    def health(self) -> dict[str, object]:
        return {
            "published_readings": self.published_readings,
            "points": len(self.latest),
            "subscribers": {
                s.name: {"queued": s.queue.qsize(), "maxsize": s.maxsize,
                         "dropped_batches": s.dropped_batches}
                for s in self._subscriptions
            },
        }
