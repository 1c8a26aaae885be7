"""The ``[actuators."device/point"]`` section: the safety settings of writable points.

Core safety configuration, parsed with the devices it names: fail-safe values (applied when
inputs go stale or a rule cannot evaluate), min and max, ramps and a minimum interval. The
actuation path and the rules both read it from ``GatewayConfig.actuators``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .driver import PointSpec
from .model import Value
from .options import Table
from .problems import Problems, did_you_mean


@dataclass(frozen=True, slots=True)
class ActuatorSettings:
    """Safety settings of one writable point, from ``[actuators."device/point"]``."""

    point: str
    fail_safe: Value | None = None
    min: float | None = None
    max: float | None = None
    max_rate: float | None = None  # units per second
    min_interval: float = 0.0
    stale_after: float | None = None


@dataclass(frozen=True)
class ActuatorsConfig:
    """Every writable point's safety settings, by point name."""

    points: Mapping[str, ActuatorSettings] = field(default_factory=dict)

    def get(self, point: str) -> ActuatorSettings | None:
        return self.points.get(point)

    def summary(self) -> str:
        guarded = sum(1 for s in self.points.values() if s.fail_safe is not None)
        return f"{len(self.points)} actuators with safety settings, {guarded} with a fail-safe value"


def parse_actuators_section(raw: Any, problems: Problems, points: Mapping[str, PointSpec]) -> ActuatorsConfig:
    """``points``: every configured point by its full name (device/point)."""
    root = Table(raw, problems, "actuators")
    settings: dict[str, ActuatorSettings] = {}
    writable = [p for p, spec in points.items() if spec.writable]
    for name in list(root.raw):
        key = f'actuators."{name}"'
        table = Table(root.raw[name], problems, key)
        spec: PointSpec | None = points.get(name)
        fail_safe = table.number_or_str("fail_safe", None)
        low = table.float("min", None)
        high = table.float("max", None)
        max_rate = table.float("max_rate", None, min=0)
        min_interval = table.duration("min_interval", 0.0, min=0)
        stale_after = table.duration("stale_after", None, min=1)
        table.finish()
        if spec is None:
            problems.add(key, f"unknown point '{name}'{did_you_mean(name, writable)}")
            continue
        if not spec.writable:
            problems.add(key, f"'{name}' is not writable{did_you_mean(name, writable)}")
            continue
        numeric = (low, high, max_rate)
        if spec.kind != "number" and any(v is not None for v in numeric):
            problems.add(key, f"min, max and max_rate only apply to number points; '{name}' is {spec.kind}")
            continue
        if low is not None and high is not None and low > high:
            table.error("min", f"min ({low:g}) is above max ({high:g})")
            continue
        if fail_safe is not None:
            kinds = {"number": (int, float), "bool": (bool,), "string": (str,)}[spec.kind]
            if not isinstance(fail_safe, kinds) or (spec.kind == "number" and isinstance(fail_safe, bool)):
                table.error("fail_safe", f"{name} is a {spec.kind} point, got {fail_safe!r}")
                continue
            if (
                spec.kind == "number"
                and isinstance(fail_safe, int | float)
                and ((low is not None and fail_safe < low) or (high is not None and fail_safe > high))
            ):
                table.error("fail_safe", f"{fail_safe!r} is outside min..max ({_fmt(low)}..{_fmt(high)})")
                continue
        settings[name] = ActuatorSettings(
            name, fail_safe, low, high, max_rate, min_interval or 0.0, stale_after
        )
    return ActuatorsConfig(settings)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
