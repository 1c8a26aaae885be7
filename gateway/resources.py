"""Resources several devices share, such as one RS-485 bus or one UDP port.

The first device that asks creates the resource; it is closed when the last one lets go.
This is how the core keeps exactly one owner per serial port or socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, cast


class SharedResource(Protocol):
    """Something several devices share (a bus, a socket); closed when the last one lets go."""

    async def close(self) -> None: ...


#: the kind of resource one family's factory makes
R = TypeVar("R", bound=SharedResource)


class SharedResources:
    """The one owner of every shared resource, by family and key (``modbus``, ``/dev/ttyUSB0``):
    the first ``acquire`` creates it, every ``release`` counts down, the last one closes it."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], tuple[SharedResource, int]] = {}
        self._lock = asyncio.Lock()

    async def acquire(self, family: str, key: str, factory: Callable[[], Awaitable[R]]) -> R:
        """The resource of ``family`` and ``key``, made by ``factory`` if nobody holds it yet.
        Every device of a family makes the same kind for a key, so one made by another
        device of the family is the kind this ``factory`` makes."""
        async with self._lock:
            found = self._items.get((family, key))
            if found is not None:
                self._items[(family, key)] = (found[0], found[1] + 1)
                return cast(R, found[0])
            resource = await factory()
            self._items[(family, key)] = (resource, 1)
            return resource

    async def release(self, family: str, key: str) -> None:
        async with self._lock:
            found = self._items.get((family, key))
            if found is None:
                return
            resource, count = found
            if count > 1:
                self._items[(family, key)] = (resource, count - 1)
                return
            del self._items[(family, key)]
        await resource.close()

    def get(self, family: str, key: str) -> SharedResource | None:
        found = self._items.get((family, key))
        return None if found is None else found[0]

    async def close_all(self) -> None:
        items, self._items = self._items, {}
        for resource, _ in items.values():
            await resource.close()
