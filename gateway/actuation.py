"""The one path every actuator write takes: overrides, limits, then the driver.

Rules, the CoAP API and the CLI all write through ``Actuation.write`` so safety limits
and overrides hold no matter who asks.
"""

from __future__ import annotations

import logging

from .clock import Clock
from .devices import Devices
from .driver import WriteError
from .model import Value
from .overrides import Overrides

log = logging.getLogger("gateway.actuation")


class Actuation:
    def __init__(self, devices: Devices, overrides: Overrides, clock: Clock):
        self.devices = devices
        self.overrides = overrides
        self.clock = clock

    async def write(self, point: str, value: Value, *, source: str) -> None:
        """Write ``value`` to ``point`` on behalf of ``source`` ("rule:<name>", "api", "cli").

        Raises WriteError when the point is unknown, not writable, held by an override
        (for sources other than manual ones) or the device refuses.
        """
        override = self.overrides.active(point)
        if override is not None and source.startswith("rule:"):
            raise WriteError(f"{point}: held by a manual override until {override.until:.0f}")
        await self.devices.write(point, value)
        log.info("event=write point=%s value=%r source=%s", point, value, source)
