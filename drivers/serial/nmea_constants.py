"""NMEA 0183 framing and sentence numbers used by the GPS parser.

A sentence is ``$<talker><type>,<fields>*<hh>\\r\\n``; hh is the XOR of the bytes between
``$`` and ``*``. The standard caps a sentence at 82 characters; receivers exceed it on
proprietary sentences, so the parser accepts up to MAX_SENTENCE_LENGTH.
"""

from __future__ import annotations

START = b"$"
CHECKSUM_MARK = b"*"
END = b"\n"
STANDARD_MAX_LENGTH = 82
MAX_SENTENCE_LENGTH = 128

KNOTS_TO_M_S = 1852.0 / 3600.0
KMH_TO_M_S = 1000.0 / 3600.0

SUPPORTED_SENTENCES = ("GGA", "RMC", "VTG")
DEFAULT_SENTENCES = ("GGA", "RMC")

#: GGA field 6: fix quality indicator
FIX_QUALITY = {
    0: "invalid",
    1: "gps",
    2: "dgps",
    3: "pps",
    4: "rtk",
    5: "float_rtk",
    6: "estimated",
    7: "manual",
    8: "simulation",
}
RMC_VALID = "A"

# point name -> (unit, kind)
POINTS: dict[str, tuple[str | None, str]] = {
    "latitude": ("lat", "number"),
    "longitude": ("lon", "number"),
    "altitude": ("m", "number"),
    "fix_quality": (None, "number"),
    "satellites": (None, "number"),
    "hdop": (None, "number"),
    "fix_valid": (None, "bool"),
    "speed": ("m/s", "number"),
    "course": ("deg", "number"),
}
SENTENCE_POINTS: dict[str, tuple[str, ...]] = {
    "GGA": ("latitude", "longitude", "altitude", "fix_quality", "satellites", "hdop"),
    "RMC": ("fix_valid", "latitude", "longitude", "speed", "course"),
    "VTG": ("speed", "course"),
}
