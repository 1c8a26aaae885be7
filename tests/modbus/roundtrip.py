"""A profile holding one writable point per data type and word order, with its test values."""

from __future__ import annotations

import struct

from drivers.modbus.codec import DataType, WordOrder

NUMERIC = {
    DataType.INT16: ("h", -12345, 321),
    DataType.UINT16: ("H", 54321, 7),
    DataType.INT32: ("i", -123456789, 99_000),
    DataType.UINT32: ("I", 3_456_789_012, 65_536),
    DataType.INT64: ("q", -1_234_567_890_123_456_789, 42),
    DataType.UINT64: ("Q", 12_345_678_901_234_567_890, 1),
    DataType.FLOAT32: ("f", -1234.5, 0.25),
    DataType.FLOAT64: ("d", 3.141592653589793, -2.5e-9),
}
STRINGS = {
    "text_abcd": (WordOrder.ABCD, "GW-01 ok", "lamp 7"),
    "text_badc": (WordOrder.BADC, "Street 12", "x"),
}


def points() -> list[tuple[str, DataType, WordOrder, int, int]]:
    """(name, type, order, address, registers), spread out with small gaps to exercise coalescing."""
    out = []
    address = 0
    for kind in NUMERIC:
        for order in WordOrder:
            size = {1: 1, 2: 2, 4: 4}[struct.calcsize(NUMERIC[kind][0]) // 2]
            out.append((f"{kind}_{order.lower()}", kind, order, address, size))
            address += size + 3
    for name, (order, _, _) in STRINGS.items():
        out.append((name, DataType.STRING, order, address, 8))
        address += 8 + 1
    return out


def profile_toml() -> str:
    lines = ['[profile]\nname = "round trip"\n']
    for name, kind, order, address, size in points():
        lines.append(
            f'\n[[points]]\nname = "{name}"\ntable = "holding_register"\naddress = {address}\n'
            f'type = "{kind}"\norder = "{order}"\nwritable = true\n'
        )
        if kind is DataType.STRING:
            lines.append(f"length = {size}\n")
    lines.append('\n[[points]]\nname = "relay"\ntable = "coil"\naddress = 3\nwritable = true\n')
    lines.append('\n[[points]]\nname = "alarm"\ntable = "discrete_input"\naddress = 5\n')
    lines.append('\n[[points]]\nname = "counter"\ntable = "input_register"\naddress = 10\ntype = "uint32"\n')
    return "".join(lines)


def layout(kind: DataType, order: WordOrder, value: object) -> list[int]:
    """The registers a device holds for ``value``, stated independently of the driver's codec."""
    if kind is DataType.STRING:
        raw = str(value).encode("latin-1").ljust(16, b"\x00")
        if order in (WordOrder.BADC, WordOrder.DCBA):
            raw = bytes(b for pair in zip(raw[1::2], raw[0::2], strict=True) for b in pair)
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 16, 2)]
    fmt = NUMERIC[kind][0]
    big, little = struct.pack(">" + fmt, value), struct.pack("<" + fmt, value)
    words = [int.from_bytes(big[i : i + 2], "big") for i in range(0, len(big), 2)]
    if order is WordOrder.ABCD:
        return words
    if order is WordOrder.CDAB:
        return words[::-1]
    if order is WordOrder.BADC:
        return [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return [int.from_bytes(little[i : i + 2], "big") for i in range(0, len(little), 2)]


def value_for(kind: DataType, name: str, first: bool) -> object:
    if kind is DataType.STRING:
        return STRINGS[name][1 if first else 2]
    return NUMERIC[kind][1 if first else 2]
