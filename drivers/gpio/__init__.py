"""GPIO relays, PWM dimmers and digital inputs on gpiozero, with a configurable pin factory."""

from .driver import GpioDriver

__all__ = ["GpioDriver"]
