"""Modbus TCP, RTU and RTU-over-TCP devices described by reusable register profiles."""

from .driver import ModbusDriver

__all__ = ["ModbusDriver"]
