"""Manual overrides of writable points, with an expiry, kept durably in the buffer.

While an override holds, rules leave the point alone; the CLI and the CoAP API set them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from .clock import Clock
from .model import Value
from .store.store import Store

NAMESPACE = "overrides"

log = logging.getLogger("gateway.overrides")


@dataclass(frozen=True, slots=True)
class Override:
    """A technician's or an operator's value for one point, held until ``until``."""

    point: str
    value: Value
    until: float  # UTC epoch seconds
    source: str
    set_at: float


class Overrides:
    """The active overrides, kept in the buffer's state table so they survive a restart."""

    def __init__(self, store: Store, clock: Clock):
        self._store = store
        self._clock = clock
        self._items: dict[str, Override] = {}

    async def load(self) -> None:
        """(Re)read every override from the buffer; ``gateway override`` writes there too."""
        items: dict[str, Override] = {}
        for key, data in (await self._store.all_state(NAMESPACE)).items():
            try:
                items[key] = Override(**data)
            except TypeError:  # a row this version cannot read must not stop the daemon
                log.warning("event=override_unreadable point=%s data=%r", key, data)
        self._items = items

    async def set(self, point: str, value: Value, duration: float, source: str) -> Override:
        now = self._clock.time()
        override = Override(point, value, now + duration, source, now)
        await self._store.put_state(NAMESPACE, {point: asdict(override)})
        self._items[point] = override
        return override

    async def clear(self, point: str) -> bool:
        existed = point in self._items
        await self._store.put_state(NAMESPACE, {point: None})
        self._items.pop(point, None)
        return existed

    def active(self, point: str) -> Override | None:
        override = self._items.get(point)
        if override is None or override.until <= self._clock.time():
            return None
        return override

    def all(self) -> list[Override]:
        now = self._clock.time()
        return [o for o in self._items.values() if o.until > now]

    def health(self) -> dict[str, Any]:
        return {o.point: {"value": o.value, "until": o.until, "source": o.source} for o in self.all()}
