"""Plantower PMS5003 / PMS7003 serial protocol numbers, from the Plantower data manuals.

Frames are big-endian; the check code is the 16-bit sum of every byte before it.
"""

from __future__ import annotations

START = b"\x42\x4d"
HEADER_SIZE = 4  # start characters + frame length
CHECK_SIZE = 2
#: frame length field of a measurement frame: 13 data words + check code
DATA_LENGTH = 28
DATA_FRAME_SIZE = HEADER_SIZE + DATA_LENGTH  # 32 bytes
#: frame length field of the answer to a mode command (command, data, check code)
REPLY_LENGTH = 4
REPLY_FRAME_SIZE = HEADER_SIZE + REPLY_LENGTH  # 8 bytes

# Host commands: 42 4D CMD DATAH DATAL LRCH LRCL
CMD_READ_PASSIVE = 0xE2
CMD_CHANGE_MODE = 0xE1
CMD_SLEEP_SET = 0xE4
MODE_PASSIVE = 0x00
MODE_ACTIVE = 0x01
SLEEP = 0x00
WAKEUP = 0x01

MASS_UNIT = "ug/m3"
COUNT_UNIT = "/dL"  # particles per 0.1 litre of air

#: data words 1..12 in order (word 13 is reserved / version and error code)
DATA_FIELDS: tuple[tuple[str, str], ...] = (
    ("pm1_0_cf1", MASS_UNIT),
    ("pm2_5_cf1", MASS_UNIT),
    ("pm10_cf1", MASS_UNIT),
    ("pm1_0", MASS_UNIT),  # atmospheric environment
    ("pm2_5", MASS_UNIT),
    ("pm10", MASS_UNIT),
    ("particles_0_3um", COUNT_UNIT),
    ("particles_0_5um", COUNT_UNIT),
    ("particles_1_0um", COUNT_UNIT),
    ("particles_2_5um", COUNT_UNIT),
    ("particles_5_0um", COUNT_UNIT),
    ("particles_10um", COUNT_UNIT),
)
DATA_WORDS = 13
