"""Simulated devices for the demo site, tests and trying out rules without hardware."""

from .driver import SimulatedDriver

__all__ = ["SimulatedDriver"]
