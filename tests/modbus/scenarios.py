"""Scenarios shared by the TCP and RTU tests: the same checks against any real slave."""

from __future__ import annotations

from typing import Any

from .harness import values
from .roundtrip import layout, points, value_for


async def check_round_trip(driver: Any, peer: Any, unit: int) -> None:
    """Writes land in the slave's registers as the independent layout says, and polls decode
    what the slave holds, for every data type and word order."""
    for name, kind, order, address, size in points():
        value = value_for(kind, name, first=True)
        await driver.write(name, value)
        held = await peer.get(unit, "holding_register", address, size)
        assert held == layout(kind, order, value), f"{name}: slave holds {held}"

    for name, kind, order, address, _ in points():
        await peer.set(
            unit, "holding_register", address, layout(kind, order, value_for(kind, name, first=False))
        )
    await peer.set(unit, "discrete_input", 5, [True])
    await peer.set(unit, "input_register", 10, [1, 2])
    polled = values(await driver.poll())
    for name, kind, _, _, _ in points():
        assert polled[name] == value_for(kind, name, first=False), name
    assert polled["alarm"] is True
    assert polled["counter"] == 65538
    assert polled["online"] is True

    await driver.write("relay", True)
    assert (await peer.get(unit, "coil", 3, 1))[0]
    await driver.write("relay", False)
    assert not (await peer.get(unit, "coil", 3, 1))[0]
