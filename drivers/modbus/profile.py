"""Device profiles: reusable register maps read from TOML files into typed point definitions.

A profile says what a kind of device offers (table, address, type, order, scale, unit);
the site config only names the profile. Every problem names the profile file and point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.model import is_valid_name_part
from gateway.options import Table as OptionTable
from gateway.problems import Problems, did_you_mean, load_toml

from .codec import DataType, Encoding, WordOrder
from .constants import MAX_READ_BITS, MAX_READ_REGISTERS, REGISTER_ADDRESS_SPACE, Table
from .planner import Span

#: point names the driver publishes itself
RESERVED_POINTS = ("online",)
PROFILE_SUFFIX = ".toml"


@dataclass(frozen=True, slots=True)
class PointDef:
    name: str
    table: Table
    address: int
    encoding: Encoding
    unit: str | None = None
    writable: bool = False
    description: str = ""

    @property
    def count(self) -> int:
        return 1 if self.table.is_bit else self.encoding.registers

    @property
    def kind(self) -> str:
        if self.table.is_bit or self.encoding.type is DataType.BOOL:
            return "bool"
        if self.encoding.type is DataType.STRING:
            return "string"
        return "number"

    def span(self) -> Span:
        return Span(self.name, self.table, self.address, self.count)

    def describe(self) -> str:
        return f"{self.table}:{self.address}"


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    source: str  # file path, or "builtin:<name>"
    points: tuple[PointDef, ...]
    manufacturer: str = ""
    model: str = ""
    description: str = ""
    #: some devices only implement function 16, even for one register
    write_multiple: bool = False
    #: devices with small buffers refuse long reads
    max_registers_per_read: int = MAX_READ_REGISTERS
    max_bits_per_read: int = MAX_READ_BITS

    def point(self, name: str) -> PointDef | None:
        return next((p for p in self.points if p.name == name), None)


def builtin_profiles() -> dict[str, Path]:
    # Files next to this module (the package is installed as files, never zipped); read with
    # pathlib, not importlib.resources, which costs a Modbus site about 0.6 MB of imports.
    folder = Path(__file__).parent / "profiles"
    out: dict[str, Path] = {}
    for item in folder.iterdir():
        if item.name.endswith(PROFILE_SUFFIX):
            out[item.name[: -len(PROFILE_SUFFIX)]] = item
    return out


def is_path_reference(reference: str) -> bool:
    return "/" in reference or reference.endswith(PROFILE_SUFFIX)


def resolve_profile(reference: str, config_dir: Path) -> Path | None:
    """The file a device's ``profile = ...`` names: a path relative to the config, or a built-in."""
    if is_path_reference(reference):
        if "\0" in reference:  # no file has a NUL in its name; resolve() would raise ValueError
            return None
        return (config_dir / reference).resolve()
    return builtin_profiles().get(reference)


def load_profile(path: Path, problems: Problems) -> Profile | None:
    """Parse the profile at ``path``; problems are reported against that file."""
    file_problems = Problems(str(path))
    raw = load_toml(path, file_problems)
    if raw is None:
        problems.extend(file_problems)
        return None
    profile = parse_profile(raw, str(path), file_problems)
    problems.extend(file_problems)
    return None if file_problems else profile


def parse_profile(raw: dict[str, object], source: str, problems: Problems) -> Profile:
    root = OptionTable(raw, problems)
    head = root.table("profile", required=True)
    name = head.str("name")
    manufacturer = head.str("manufacturer", "")
    model = head.str("model", "")
    description = head.str("description", "")
    default_order = _order(head, "word_order", WordOrder.ABCD)
    address_base = head.int("address_base", 0, min=0, max=1)
    write_multiple = head.bool("write_multiple", False)
    max_registers = head.int("max_registers_per_read", MAX_READ_REGISTERS, min=1, max=MAX_READ_REGISTERS)
    max_bits = head.int("max_bits_per_read", MAX_READ_BITS, min=1, max=MAX_READ_BITS)
    head.finish()

    points: list[PointDef] = []
    seen: dict[str, str] = {}
    point_tables = root.tables("points")
    if not point_tables and isinstance(raw.get("points", []), list):
        root.error("points", "a profile needs at least one [[points]] table")
    for table in point_tables:
        raw_name = table.raw.get("name")
        duplicate = isinstance(raw_name, str) and raw_name in seen
        point = _parse_point(table, default_order, address_base or 0, max_registers or MAX_READ_REGISTERS)
        if duplicate and isinstance(raw_name, str):
            table.error("name", f"point '{raw_name}' is defined twice (first at {seen[raw_name]})")
            continue
        if isinstance(raw_name, str):
            seen[raw_name] = table.prefix
        if point is not None:
            points.append(point)
    root.finish()
    return Profile(
        name or "?",
        source,
        tuple(points),
        manufacturer or "",
        model or "",
        description or "",
        bool(write_multiple),
        max_registers or MAX_READ_REGISTERS,
        max_bits or MAX_READ_BITS,
    )


def _order(table: OptionTable, key: str, default: WordOrder) -> WordOrder:
    text = table.str(key, default.value, choices=[o.value for o in WordOrder])
    return WordOrder(text) if text else default


def _parse_point(
    table: OptionTable, default_order: WordOrder, address_base: int, max_registers: int
) -> PointDef | None:
    name = table.str("name")
    if isinstance(name, str) and not is_valid_name_part(name):
        table.error("name", f"'{name}' may use letters, digits, '_', '-' and '.' only")
        name = None
    elif isinstance(name, str) and name in RESERVED_POINTS:
        table.error("name", f"'{name}' is published by the driver itself; choose another name")
        name = None
    table_text = table.str("table", choices=[t.value for t in Table])
    data_table = Table(table_text) if table_text else None
    address = table.int("address", min=address_base, max=REGISTER_ADDRESS_SPACE - 1 + address_base)
    default_type = DataType.BOOL if data_table is not None and data_table.is_bit else DataType.UINT16
    type_text = table.str("type", default_type.value, choices=[t.value for t in DataType])
    data_type = DataType(type_text) if type_text else None
    order = _order(table, "order", default_order)
    scale = table.float("scale", 1.0)
    offset = table.float("offset", 0.0)
    length = table.int("length", None, min=1, max=max_registers) if data_type is DataType.STRING else 0
    bit = table.int("bit", None, min=0, max=15)
    unit = table.str("unit", None)
    writable = table.bool("writable", False)
    description = table.str("description", "")
    table.finish()
    if name is None or data_table is None or address is None or data_type is None:
        return None

    ok = True
    if scale == 0:
        table.error("scale", "must not be 0")
        ok = False
    if data_table.is_bit and data_type is not DataType.BOOL:
        table.error("type", f"a {data_table} holds one bit; use type = \"bool\" (got '{data_type}')")
        ok = False
    if data_type is DataType.STRING and not table.has("length"):
        table.error("length", "a string point needs length = <number of registers>")
        ok = False
    if data_type not in (DataType.STRING,) and table.has("length"):
        table.error("length", "only string points have a length")
        ok = False
    if bit is not None and (
        data_table.is_bit or data_type not in (DataType.BOOL, DataType.INT16, DataType.UINT16)
    ):
        table.error("bit", "bit selects one bit of a 16-bit register (type bool, int16 or uint16)")
        ok = False
    if (scale != 1.0 or offset != 0.0) and data_type in (DataType.BOOL, DataType.STRING):
        table.error("scale" if scale != 1.0 else "offset", f"a {data_type} point cannot be scaled")
        ok = False
    if writable and not data_table.is_writable:
        table.error(
            "writable",
            f"{data_table} points are read-only in Modbus; only coils and holding registers can be written",
        )
        ok = False
    if writable and bit is not None:
        table.error("writable", "a single bit of a register cannot be written on its own")
        ok = False
    encoding = Encoding(data_type, order, scale or 1.0, offset or 0.0, length or 0, bit)
    address -= address_base
    count = 1 if data_table.is_bit else encoding.registers
    if ok and address + count > REGISTER_ADDRESS_SPACE:
        table.error("address", f"a {data_type} at {address} runs past the last address 65535")
        ok = False
    if not ok:
        return None
    return PointDef(name, data_table, address, encoding, unit, bool(writable), description or "")


def unknown_profile_message(reference: str) -> str:
    names = sorted(builtin_profiles())
    return (
        f"no built-in profile '{reference}'{did_you_mean(reference, names)}; built-ins: "
        f"{', '.join(names)}; or give a path such as 'profiles/my_meter.toml' relative to the config file"
    )
