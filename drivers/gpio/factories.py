"""gpiozero pin factories by name, imported only when chosen so a PC never imports lgpio or RPi.GPIO.

One factory instance serves every GPIO device of the gateway (gpiozero tracks pin reservations per factory).
"""

from __future__ import annotations

import importlib
import types
from typing import Any

from gateway.lazyimport import defer_import, defer_package_init, deferred_imports

# gpiozero takes importlib.metadata's entry_points at its import, to find pin factories and
# mock pin classes by name; this driver always gives both, so importlib.metadata (with email,
# zipfile and csv: about 0.9 MB) is loaded only if something calls it.
defer_import("importlib.metadata", functions=("entry_points",))
# gpiozero's __init__ imports every device class it has (boards, robots, SPI ADCs, tones,
# seven-segment fonts): 1.4 MB. The driver takes its four classes from their own modules.
defer_package_init("gpiozero")
#: what gpiozero imports at its top for devices this driver never makes, each loaded on its
#: first use: statistics (with fractions and decimal: about 0.6 MB) for smoothed input devices,
#: which call median or mean, and colorzero (about 0.8 MB) for RGBLED's colour. Only while
#: gpiozero imports: later importers of either module get it whole.
_GPIOZERO_DEFERS = {"statistics": ("median", "mean"), "colorzero": ("Color",)}


def import_gpiozero(module_name: str) -> types.ModuleType:
    """A gpiozero module, imported without what ``_GPIOZERO_DEFERS`` names until it is used."""
    with deferred_imports(_GPIOZERO_DEFERS):
        return importlib.import_module(module_name)


#: name -> (module, class, what to install when the import fails)
FACTORIES: dict[str, tuple[str, str, str]] = {
    "lgpio": (
        "gpiozero.pins.lgpio",
        "LGPIOFactory",
        "the lgpio package (Raspberry Pi OS: apt install python3-lgpio)",
    ),
    "rpigpio": (
        "gpiozero.pins.rpigpio",
        "RPiGPIOFactory",
        "the RPi.GPIO package (older Raspberry Pi boards)",
    ),
    "native": ("gpiozero.pins.native", "NativeFactory", "a Raspberry Pi (/dev/gpiomem)"),
    "mock": ("gpiozero.pins.mock", "MockFactory", "nothing; it is part of gpiozero"),
}


class PinFactoryError(OSError):
    """The configured pin factory cannot run on this machine; the message says what it needs."""


def make_factory(name: str) -> Any:
    module_name, class_name, needs = FACTORIES[name]
    try:
        module = import_gpiozero(module_name)
    except ImportError as exc:
        raise PinFactoryError(f"pin factory '{name}' needs {needs}: {exc}") from None
    factory_class = getattr(module, class_name)
    try:
        if name == "mock":
            # PWM pins also behave as plain digital pins, so one mock pin class serves every point.
            return factory_class(pin_class=module.MockPWMPin)
        return factory_class()
    except Exception as exc:  # noqa: BLE001 - gpiozero raises many types when the board is missing
        raise PinFactoryError(f"pin factory '{name}' cannot start here ({needs}): {exc}") from None


class SharedFactory:
    """The shared resource wrapper: closes the factory when the last GPIO device lets go."""

    def __init__(self, name: str):
        self.name = name
        self.factory = make_factory(name)

    async def close(self) -> None:
        self.factory.close()
