"""Defaults of the generic line protocol: line framing, text encoding and value types."""

from __future__ import annotations

DEFAULT_TERMINATOR = "\n"
DEFAULT_ENCODING = "ascii"
DEFAULT_MAX_LINE = 256
VALUE_TYPES = ("float", "int", "bool", "string")
#: kind of the gateway point each value type produces
POINT_KINDS = {"float": "number", "int": "number", "bool": "bool", "string": "string"}
DEFAULT_TRUE_VALUES = ("1", "true", "on", "yes", "high", "closed")
DEFAULT_FALSE_VALUES = ("0", "false", "off", "no", "low", "open")
