"""The GPIO driver's ``[devices.options]``: pin factory and the points (relays, PWM, inputs) as typed objects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.model import is_valid_name_part
from gateway.options import Table

from .factories import FACTORIES

POINT_TYPES = ("relay", "pwm", "input", "button")
OUTPUT_TYPES = ("relay", "pwm")
PULLS = ("up", "down", "none")
LEVELS = ("high", "low")


@dataclass(frozen=True, slots=True)
class GpioPoint:
    name: str
    type: str
    pin: int | str
    active_high: bool = True
    initial: float | bool = False  # relay: bool; pwm: percent
    frequency: int = 100
    pull: str = "down"
    invert: bool = False  # inputs: report the opposite of what the pull implies
    bounce_time: float | None = None
    debounce: float = 0.0

    @property
    def is_output(self) -> bool:
        return self.type in OUTPUT_TYPES


@dataclass(frozen=True, slots=True)
class GpioOptions:
    pin_factory: str
    heartbeat: float
    points: tuple[GpioPoint, ...]


def parse_gpio_options(options: Table, config_dir: Path) -> GpioOptions | None:
    factory = options.str("pin_factory", "lgpio", choices=tuple(FACTORIES))
    heartbeat = options.duration("heartbeat", 60.0, min=0.0)
    points: list[GpioPoint] = []
    pins: dict[str, str] = {}
    for table in options.tables("points"):
        point = _parse_point(table)
        if point is None:
            continue
        key = str(point.pin).upper().removeprefix("GPIO").removeprefix("BCM")
        if key in pins:
            table.error("pin", f"pin {point.pin} is already used by point '{pins[key]}'")
        pins.setdefault(key, point.name)
        if any(p.name == point.name for p in points):
            table.error("name", f"point '{point.name}' is declared twice")
        points.append(point)
    if not options.has("points"):
        options.error("points", "a GPIO device needs at least one [[devices.options.points]]")
    options.finish()
    if factory is None:
        return None
    return GpioOptions(factory, heartbeat if heartbeat is not None else 60.0, tuple(points))


def _parse_point(table: Table) -> GpioPoint | None:
    name = table.str("name")
    kind = table.str("type", choices=POINT_TYPES)
    pin = table.number_or_str("pin", None)
    if isinstance(pin, bool | float):
        table.error("pin", f"must be a BCM number or a pin name, got {pin!r}")
        pin = None
    elif pin is None:
        table.error("pin", 'is required (BCM number such as 17, or a name such as "GPIO17" or "BOARD11")')
    if isinstance(pin, int) and not 0 <= pin <= 53:
        table.error("pin", f"BCM pin numbers run from 0 to 53, got {pin}")
    if name is not None and not is_valid_name_part(name):
        table.error("name", f"'{name}' may use letters, digits, '_', '-' and '.' only")
    active = table.str("active", None, choices=LEVELS)
    point = None
    if kind in ("relay", "pwm"):
        initial: bool | float | None
        if kind == "relay":
            initial = table.bool("initial", False)
        else:
            initial = table.float("initial", 0.0, min=0.0, max=100.0)
        frequency = table.int("frequency", 100, min=1, max=40_000) if kind == "pwm" else 100
        if name is not None and kind and pin is not None:
            point = GpioPoint(
                name,
                kind,
                pin,
                active_high=(active or "high") == "high",
                initial=initial if initial is not None else False,
                frequency=frequency or 100,
            )
    elif kind in ("input", "button"):
        pull = table.str("pull", "up" if kind == "button" else "down", choices=PULLS)
        bounce_time = table.duration("bounce_time", None, min=0.0)
        debounce = table.duration("debounce", 0.0, min=0.0)
        if pull == "none" and active is None:
            table.error("active", 'an input without a pull resistor needs active = "high" or "low"')
        implied = "low" if pull == "up" else "high"
        invert = pull != "none" and active is not None and active != implied
        if name is not None and kind and pin is not None and pull:
            point = GpioPoint(
                name,
                kind,
                pin,
                active_high=(active or implied) == "high",
                pull=pull,
                invert=invert,
                bounce_time=bounce_time,
                debounce=debounce or 0.0,
            )
    table.finish()
    return point
