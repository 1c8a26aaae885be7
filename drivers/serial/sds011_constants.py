"""Nova Fitness SDS011 serial protocol numbers, from the "Laser Dust Sensor Control Protocol V1.3".

Every frame starts with 0xAA and ends with 0xAB; the check-sum is the low byte of the sum of
the data bytes (sensor frames: bytes 2..7; host commands: bytes 2..16).
"""

from __future__ import annotations

HEAD = 0xAA
TAIL = 0xAB
SENSOR_FRAME_SIZE = 10
COMMAND_FRAME_SIZE = 19

# byte 1 of a frame
CMD_HOST = 0xB4  # host -> sensor
REPLY_DATA = 0xC0  # sensor -> host: PM2.5 / PM10 measurement
REPLY_COMMAND = 0xC5  # sensor -> host: answer to a host command
SENSOR_FRAME_TYPES = (REPLY_DATA, REPLY_COMMAND)

# data byte 1 of a host command (frame byte 2)
SUB_REPORTING_MODE = 2
SUB_QUERY_DATA = 4
SUB_SET_DEVICE_ID = 5
SUB_SLEEP_WORK = 6
SUB_FIRMWARE = 7
SUB_WORKING_PERIOD = 8

OP_QUERY = 0
OP_SET = 1
REPORT_ACTIVE = 0
REPORT_QUERY = 1
MODE_SLEEP = 0
MODE_WORK = 1

ALL_SENSORS = 0xFFFF
MASS_UNIT = "ug/m3"
