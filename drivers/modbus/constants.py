"""Modbus protocol numbers in one named place: function codes, exception codes, frame limits.

Values come from the Modbus Application Protocol Specification V1.1b3 and the serial line
guide V1.02; nothing else in the driver spells a raw protocol number.
"""

from __future__ import annotations

import enum


class Table(enum.StrEnum):
    """The four Modbus data tables, named as they appear in profile files."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    INPUT_REGISTER = "input_register"
    HOLDING_REGISTER = "holding_register"

    @property
    def is_bit(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)

    @property
    def is_writable(self) -> bool:
        return self in (Table.COIL, Table.HOLDING_REGISTER)


class FunctionCode(enum.IntEnum):
    READ_COILS = 0x01
    READ_DISCRETE_INPUTS = 0x02
    READ_HOLDING_REGISTERS = 0x03
    READ_INPUT_REGISTERS = 0x04
    WRITE_SINGLE_COIL = 0x05
    WRITE_SINGLE_REGISTER = 0x06
    WRITE_MULTIPLE_COILS = 0x0F
    WRITE_MULTIPLE_REGISTERS = 0x10


READ_FUNCTION: dict[Table, FunctionCode] = {
    Table.COIL: FunctionCode.READ_COILS,
    Table.DISCRETE_INPUT: FunctionCode.READ_DISCRETE_INPUTS,
    Table.HOLDING_REGISTER: FunctionCode.READ_HOLDING_REGISTERS,
    Table.INPUT_REGISTER: FunctionCode.READ_INPUT_REGISTERS,
}

#: A function code with this bit set in a response is an exception response.
EXCEPTION_FLAG = 0x80


class ExceptionCode(enum.IntEnum):
    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    SERVER_DEVICE_BUSY = 0x06
    MEMORY_PARITY_ERROR = 0x08
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_TARGET_FAILED_TO_RESPOND = 0x0B


def exception_name(code: int) -> str:
    try:
        return ExceptionCode(code).name.lower()
    except ValueError:
        return f"exception_{code}"


# Per-request quantity limits (spec section 6): they follow from the 253-byte PDU.
MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000
MAX_WRITE_REGISTERS = 123
MAX_WRITE_COILS = 1968

REGISTER_ADDRESS_SPACE = 0x10000
UNIT_ID_MIN = 0  # 0 is broadcast on RTU; many TCP devices also answer on 0
UNIT_ID_MAX = 247
TCP_UNIT_ID_MAX = 255

DEFAULT_TCP_PORT = 502

#: On RTU a frame ends after 3.5 character times of silence; above 19200 baud the serial
#: line guide fixes it at 1.75 ms.
RTU_SILENT_CHARS = 3.5
RTU_FIXED_GAP_ABOVE_19200 = 0.00175
BITS_PER_CHAR = 11  # start + 8 data + parity/stop + stop

COIL_ON = 0xFF00
COIL_OFF = 0x0000


def rtu_frame_gap(baudrate: int) -> float:
    """Minimum silent interval between RTU frames at ``baudrate``, in seconds."""
    if baudrate > 19200:
        return RTU_FIXED_GAP_ABOVE_19200
    return RTU_SILENT_CHARS * BITS_PER_CHAR / baudrate
