"""Serial sensors and signs: Plantower PMS5003/7003, Nova SDS011, NMEA 0183 GPS and generic ASCII lines."""

from .driver import SerialDriver

__all__ = ["SerialDriver"]
