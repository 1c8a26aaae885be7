"""Frame builders for the serial tests: real frames per datasheet, plus the usual line damage."""

from __future__ import annotations

from drivers.serial import nmea, plantower, sds011


def pms_frame(i: int) -> bytes:
    """A PMS5003 data frame whose values all derive from ``i`` (PM2.5 atmospheric = i)."""
    return plantower.encode_data_frame(
        [i + 100, i + 200, i + 300, i + 50, i, i + 10, 1000 + i, 500 + i, 100 + i, 10 + i, 5, 1]
    )


def corrupt(frame: bytes, at: int = 9) -> bytes:
    """The frame with one data byte flipped: the check code no longer matches."""
    return frame[:at] + bytes((frame[at] ^ 0x01,)) + frame[at + 1 :]


def sds_frame(i: int) -> bytes:
    return sds011.encode_data_frame(i / 10 + 1.0, i / 10 + 2.0)


def gga(
    lat: str = "4807.038",
    ns: str = "N",
    lon: str = "01131.000",
    ew: str = "E",
    quality: int = 1,
    sats: int = 8,
) -> bytes:
    return nmea.encode_sentence(
        f"GPGGA,123519,{lat},{ns},{lon},{ew},{quality},{sats:02d},0.9,545.4,M,46.9,M,,"
    )


def rmc(status: str = "A", speed_knots: str = "022.4") -> bytes:
    return nmea.encode_sentence(
        f"GPRMC,123519,{status},4807.038,N,01131.000,E,{speed_knots},084.4,230394,003.1,W"
    )


#: junk that cannot contain the start byte of any of the binary protocols
JUNK = bytes(b for b in range(256) if b not in (0x42, 0xAA, ord("$"), ord("\n")))[:40]
