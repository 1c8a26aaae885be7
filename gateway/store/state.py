"""Durable key-value state for one owner (a driver, the rules engine), kept in the buffer:
the store's side of the driver SDK's ``StateStore`` protocol.

LoRaWAN frame counters, rule timers and overrides live here so a power cut loses nothing.
"""

from __future__ import annotations

from typing import Any

from .store import Store


class NamespacedState:
    """One owner's namespace of the buffer's state table."""

    def __init__(self, store: Store, namespace: str):
        self._store = store
        self.namespace = namespace

    async def get(self, key: str) -> Any:
        return await self._store.get_state(self.namespace, key)

    async def all(self) -> dict[str, Any]:
        return await self._store.all_state(self.namespace)

    async def put(self, key: str, value: Any) -> None:
        await self._store.put_state(self.namespace, {key: value})

    async def put_many(self, items: dict[str, Any]) -> None:
        await self._store.put_state(self.namespace, items)

    async def delete(self, key: str) -> None:
        await self._store.put_state(self.namespace, {key: None})
