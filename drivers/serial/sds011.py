"""Sans-IO parser and command encoder for the Nova Fitness SDS011 particulate sensor.

Data frames (0xC0) become PM2.5 / PM10 samples; command answers (0xC5) become reply frames
so a driver can confirm that a mode change was taken.
"""

from __future__ import annotations

from . import sds011_constants as C
from .events import BadFrame, Event, Frame, Junk, Sample
from .scanner import FrameScanner


def command(sub: int, data: bytes = b"", device_id: int = C.ALL_SENSORS) -> bytes:
    """A 19-byte host command: AA B4 <13 data bytes> <device id> <check-sum> AB."""
    payload = bytes((sub,)) + data.ljust(12, b"\x00") + device_id.to_bytes(2, "big")
    return bytes((C.HEAD, C.CMD_HOST)) + payload + bytes((sum(payload) & 0xFF, C.TAIL))


def set_reporting_mode(query: bool) -> bytes:
    return command(C.SUB_REPORTING_MODE, bytes((C.OP_SET, C.REPORT_QUERY if query else C.REPORT_ACTIVE)))


def query_data() -> bytes:
    return command(C.SUB_QUERY_DATA)


def set_working(working: bool) -> bytes:
    return command(C.SUB_SLEEP_WORK, bytes((C.OP_SET, C.MODE_WORK if working else C.MODE_SLEEP)))


def set_working_period(minutes: int) -> bytes:
    """0 = continuous; 1..30 = one measurement every ``minutes`` (sleeping in between)."""
    return command(C.SUB_WORKING_PERIOD, bytes((C.OP_SET, minutes)))


def encode_sensor_frame(kind: int, data: bytes, device_id: int = 0x1234) -> bytes:
    """A sensor -> host frame (``data`` is 4 bytes); used by tests and peers."""
    payload = data[:4].ljust(4, b"\x00") + device_id.to_bytes(2, "big")
    return bytes((C.HEAD, kind)) + payload + bytes((sum(payload) & 0xFF, C.TAIL))


def encode_data_frame(pm2_5: float, pm10: float, device_id: int = 0x1234) -> bytes:
    data = round(pm2_5 * 10).to_bytes(2, "little") + round(pm10 * 10).to_bytes(2, "little")
    return encode_sensor_frame(C.REPLY_DATA, data, device_id)


class Sds011Parser(FrameScanner):
    START = bytes((C.HEAD,))

    def frame_at(self, buf: bytearray, pos: int) -> tuple[Event, int] | None:
        if len(buf) - pos < 2:
            return None
        if buf[pos + 1] not in C.SENSOR_FRAME_TYPES:
            return Junk(1), pos + 1  # 0xAA can occur inside a frame; only a known type byte starts one
        if len(buf) - pos < C.SENSOR_FRAME_SIZE:
            return None
        frame = bytes(buf[pos : pos + C.SENSOR_FRAME_SIZE])
        if frame[9] != C.TAIL:
            return BadFrame("tail", C.SENSOR_FRAME_SIZE), pos + 1
        if sum(frame[2:8]) & 0xFF != frame[8]:
            return BadFrame("checksum", C.SENSOR_FRAME_SIZE), pos + 1
        return _decode(frame), pos + C.SENSOR_FRAME_SIZE


def _decode(frame: bytes) -> Frame:
    if frame[1] == C.REPLY_COMMAND:
        return Frame("reply", command=frame[2])
    pm2_5 = int.from_bytes(frame[2:4], "little") / 10
    pm10 = int.from_bytes(frame[4:6], "little") / 10
    return Frame("data", (Sample("pm2_5", pm2_5, C.MASS_UNIT), Sample("pm10", pm10, C.MASS_UNIT)))
