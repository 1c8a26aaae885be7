"""Helpers for driving a running service from rule tests."""

from __future__ import annotations

import json

from gateway.model import Reading


async def publish(service, point: str, value, ts: float | None = None) -> None:
    await service.hub.publish([Reading(point, value, service.clock.time() if ts is None else ts)])


async def quiet(service) -> None:
    """Return once nothing more follows from what happened so far: the loop is quiet, the
    store has committed what it was given (a reading reaches the hub only once stored), and
    the loop is quiet again after the hub handed those readings on."""
    await service.clock.settle()
    await service.store.flush()
    await service.clock.settle()


def level(service):
    reading = service.hub.latest.get("lamp/level")
    return None if reading is None else reading.value


async def actuation_records(service) -> list[dict]:
    await service.store.flush()
    rows = await service.store.history("events/actuation")
    return [json.loads(r.value) for r in rows]
