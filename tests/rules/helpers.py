"""Helpers for driving a running service from rule tests."""

from __future__ import annotations

import json

from gateway.model import Reading


async def publish(service, point: str, value, ts: float | None = None) -> None:
    await service.hub.publish([Reading(point, value, service.clock.time() if ts is None else ts)])


def level(service):
    reading = service.hub.latest.get("lamp/level")
    return None if reading is None else reading.value


async def actuation_records(service) -> list[dict]:
    await service.store.flush()
    rows = await service.store.history("events/actuation")
    return [json.loads(r.value) for r in rows]
