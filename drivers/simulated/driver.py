"""The ``simulated`` driver: polled devices whose points follow seeded signal shapes.

Writable points keep the value written, and a streetlight's power follows its level, so
rules can be tried end to end without hardware.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.driver import DemoPart, Driver, DriverContext, PointSpec, WriteError
from gateway.model import Reading, Value, is_valid_name_part
from gateway.options import Table

from .profiles import PROFILES, SimPoint
from .signals import WAVEFORMS, Signal

if TYPE_CHECKING:
    from gateway.config import DeviceConfig

STREETLIGHT_WATTS = 120.0


@dataclass(frozen=True, slots=True)
class SimulatedOptions:
    profile: str
    seed: int
    points: tuple[SimPoint, ...]
    fail_every: int  # raise on every Nth poll, 0 = never; for exercising restarts


class SimulatedDriver(Driver[SimulatedOptions]):
    demo = DemoPart(site="drivers.simulated/demo-site.toml")
    name = "simulated"

    @classmethod
    def parse_options(cls, options: Table, config_dir: Path) -> SimulatedOptions:
        profile = options.str("profile", "custom", choices=(*PROFILES, "custom"))
        seed = options.int("seed", 0)
        fail_every = options.int("fail_every", 0, min=0)
        points = list(PROFILES.get(profile, ()))
        for table in options.tables("points"):
            name = table.str("name")
            if isinstance(name, str) and not is_valid_name_part(name):
                table.error("name", f"'{name}' may use letters, digits, '_', '-' and '.' only")
            kind = table.str("kind", "number", choices=("number", "bool", "string"))
            point = SimPoint(
                name=name or "?",
                unit=table.str("unit", None),
                kind=kind or "number",
                waveform=table.str("waveform", "sine", choices=WAVEFORMS) or "sine",
                low=table.float("min", 0.0),
                high=table.float("max", 100.0),
                period=table.duration("period", 600.0, min=0.001),
                step=table.float("step", 0.0),
                writable=table.bool("writable", False),
                initial=table.number_or_str("initial", None),
            )
            table.finish()
            points.append(point)
        if options.raw.get("profile", "custom") == "custom" and not points:
            options.error("points", "a custom simulated device needs at least one [[devices.options.points]]")
        options.finish()
        return SimulatedOptions(profile or "custom", seed or 0, tuple(points), fail_every or 0)

    @classmethod
    def declare_points(cls, options: SimulatedOptions | None) -> Sequence[PointSpec]:
        if options is None:  # its problems are reported already
            return []
        return [PointSpec(p.name, p.unit, p.kind, p.writable) for p in options.points]

    def __init__(self, device: DeviceConfig[SimulatedOptions], ctx: DriverContext):
        super().__init__(device, ctx)
        rng = random.Random(f"{device.name}:{self.options.seed}")
        self._signals = {
            p.name: Signal(p.waveform, p.low, p.high, p.period, p.step, rng, kind=p.kind, whole=p.whole)
            for p in self.options.points
            if not p.writable
        }
        self._written: dict[str, Value] = {
            p.name: p.initial if p.initial is not None else p.low for p in self.options.points if p.writable
        }
        self._units = {p.name: p.unit for p in self.options.points}
        self._polls = 0

    async def poll(self) -> Sequence[Reading]:
        self._polls += 1
        if self.options.fail_every and self._polls % self.options.fail_every == 0:
            raise OSError(f"simulated fault on poll {self._polls}")
        now = self.ctx.clock.time()
        out = []
        for name, signal in self._signals.items():
            value: Value = signal.sample(now)
            if name == "power" and "level" in self._written:
                value = round(STREETLIGHT_WATTS * float(self._written["level"]) / 100.0, 1)
            out.append(self.ctx.reading(name, value, self._units[name], ts=now))
        for name, value in self._written.items():
            out.append(self.ctx.reading(name, value, self._units[name], ts=now))
        return out

    async def write(self, point: str, value: Value) -> None:
        if point not in self._written:
            raise WriteError(f"{self.device.name}/{point} is not writable")
        self._written[point] = value
        await self.ctx.publish([self.ctx.reading(point, value, self._units[point])])

    def health(self) -> dict[str, Any]:
        return {"polls": self._polls}
