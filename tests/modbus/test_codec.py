"""Register decoding and encoding, without any I/O: every type, every word order, scale, strings."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import (
    DataType,
    EncodeError,
    Encoding,
    WordOrder,
    decode_registers,
    encode_registers,
    integer_range,
)

FORMATS = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}


def expected_registers(kind: DataType, order: WordOrder, value) -> list[int]:
    """Independent statement of the four layouts, straight from their definitions."""
    fmt = FORMATS[kind]
    big, little = struct.pack(">" + fmt, value), struct.pack("<" + fmt, value)
    words = lambda raw: [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]  # noqa: E731
    if order is WordOrder.ABCD:
        return words(big)
    if order is WordOrder.DCBA:
        return words(little)
    if order is WordOrder.CDAB:  # words little-endian, bytes in each word big-endian
        return list(reversed(words(big)))
    return [((w & 0xFF) << 8) | (w >> 8) for w in words(big)]  # BADC


def test_float32_layouts_match_the_textbook_example():
    # 123.456 is 0x42F6E979 in IEEE-754: A=42 B=F6 C=E9 D=79
    enc = lambda order: Encoding(DataType.FLOAT32, order)  # noqa: E731
    assert encode_registers(123.456, enc(WordOrder.ABCD)) == [0x42F6, 0xE979]
    assert encode_registers(123.456, enc(WordOrder.CDAB)) == [0xE979, 0x42F6]
    assert encode_registers(123.456, enc(WordOrder.BADC)) == [0xF642, 0x79E9]
    assert encode_registers(123.456, enc(WordOrder.DCBA)) == [0x79E9, 0xF642]
    for order in WordOrder:
        assert decode_registers(encode_registers(123.456, enc(order)), enc(order)) == 123.456


@pytest.mark.parametrize("order", list(WordOrder))
@pytest.mark.parametrize("kind", [k for k in DataType if k in FORMATS])
def test_every_type_and_order_matches_the_independent_layout(kind, order):
    if kind in (DataType.FLOAT32, DataType.FLOAT64):
        value = -1234.5
    else:
        low, high = integer_range(kind)
        value = low + (high - low) // 3
    registers = encode_registers(value, Encoding(kind, order))
    assert registers == expected_registers(kind, order, value)
    assert decode_registers(registers, Encoding(kind, order)) == value


@given(
    st.sampled_from([k for k in DataType if k in FORMATS and k not in (DataType.FLOAT32, DataType.FLOAT64)]),
    st.sampled_from(list(WordOrder)),
    st.data(),
)
def test_integers_round_trip(kind, order, data):
    low, high = integer_range(kind)
    value = data.draw(st.integers(low, high))
    encoding = Encoding(kind, order)
    registers = encode_registers(value, encoding)
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode_registers(registers, encoding) == value


@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(list(WordOrder)))
def test_float64_round_trips_exactly(value, order):
    encoding = Encoding(DataType.FLOAT64, order)
    assert decode_registers(encode_registers(value, encoding), encoding) == value


def test_float32_reports_the_short_decimal_the_device_meant():
    encoding = Encoding(DataType.FLOAT32)
    assert decode_registers(encode_registers(230.1, encoding), encoding) == 230.1


def test_scale_and_offset_apply_both_ways():
    encoding = Encoding(DataType.INT16, scale=0.1, offset=-40.0)
    assert encode_registers(21.5, encoding) == [615]
    assert decode_registers([615], encoding) == 21.5
    assert decode_registers([0xFFFF], Encoding(DataType.INT16, scale=0.1)) == -0.1
    assert decode_registers([1234], Encoding(DataType.UINT16, scale=0.1)) == 123.4


def test_unscaled_integers_stay_integers():
    value = decode_registers([0, 7], Encoding(DataType.UINT32))
    assert value == 7 and isinstance(value, int)


@pytest.mark.parametrize(
    "order,registers",
    [
        (WordOrder.ABCD, [0x4757, 0x2D30, 0x3100, 0x0000]),
        (WordOrder.BADC, [0x5747, 0x302D, 0x0031, 0x0000]),
    ],
)
def test_strings_pad_with_nul_and_swap_bytes_only(order, registers):
    encoding = Encoding(DataType.STRING, order, length=4)
    assert encode_registers("GW-01", encoding) == registers
    assert decode_registers(registers, encoding) == "GW-01"


def test_string_that_does_not_fit_is_refused():
    with pytest.raises(EncodeError, match="holds 4"):
        encode_registers("12345", Encoding(DataType.STRING, length=2))


def test_bits_of_a_status_word():
    assert decode_registers([0b10], Encoding(DataType.BOOL, bit=1)) is True
    assert decode_registers([0b10], Encoding(DataType.BOOL, bit=0)) is False
    assert decode_registers([0b1000], Encoding(DataType.UINT16, bit=3)) == 1
    assert decode_registers([2], Encoding(DataType.BOOL)) is True


@pytest.mark.parametrize(
    "kind,value,message",
    [
        (DataType.UINT16, 70000, "out of range"),
        (DataType.INT16, -40000, "out of range"),
        (DataType.UINT16, -1, "out of range"),
        (DataType.INT32, 1.5, "whole number"),
        (DataType.UINT16, "ten", "expects a number"),
        (DataType.UINT16, True, "expects a number"),
        (DataType.BOOL, "maybe", "true/false"),
    ],
)
def test_values_that_do_not_fit_are_refused(kind, value, message):
    with pytest.raises(EncodeError, match=message):
        encode_registers(value, Encoding(kind))


def test_wrong_register_count_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode_registers([1], Encoding(DataType.FLOAT32))
