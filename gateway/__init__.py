"""Smart-city edge gateway: drivers in, SQLite buffer, local rules, CoAP upstream."""

__version__ = "0.1.0"
