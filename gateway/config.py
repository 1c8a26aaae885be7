"""The site configuration: one TOML file parsed once into typed, validated objects.

Core sections (``[gateway]``, ``[store]``, ``[[devices]]``, ``[actuators]``) are parsed here;
other top-level sections belong to the component that owns them (``components.SECTIONS``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from .actuators import ActuatorsConfig, parse_actuators_section
from .components import SECTIONS, SectionConfig, is_section_parser
from .driver import Driver, OptionsT, PointSpec, available_drivers, load_driver, load_target
from .model import is_valid_name_part
from .options import Table
from .problems import ConfigError, Problem, Problems, did_you_mean, load_toml, parse_toml
from .store.config import StoreConfig
from .wiring import OpensSerialPort, WiredDevice, check_serial_wiring

CORE_SECTIONS = ("gateway", "store", "devices", "actuators")
LOG_LEVELS = ("debug", "info", "warning", "error")

S = TypeVar("S", bound=SectionConfig)


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """The ``[gateway]`` section: the site's identity, location, time zone and data directory."""

    id: str
    name: str
    latitude: float | None
    longitude: float | None
    timezone: str
    data_dir: Path
    log_level: str


@dataclass(frozen=True, slots=True)
class DeviceConfig(Generic[OptionsT]):
    """One ``[[devices]]`` entry: its driver, poll interval and the driver's typed options;
    a driver is handed a ``DeviceConfig`` of its own options type."""

    name: str
    driver: str
    interval: float | None
    enabled: bool
    options: OptionsT
    points: tuple[PointSpec, ...]
    driver_class: type[Driver[OptionsT]] = field(repr=False, compare=False)
    #: silence after which the device is ``stale``; None: the driver kind's default
    stale_after: float | None = None

    def point(self, name: str) -> PointSpec | None:
        for spec in self.points:
            if spec.name == name:
                return spec
        return None


@dataclass(frozen=True, slots=True)
class SectionContext:
    """What a component's section parser may look at: the site and every known point."""

    site: SiteConfig
    config_dir: Path
    points: Mapping[str, PointSpec]
    #: each device with its own driver family's options, hence Any
    devices: Mapping[str, DeviceConfig[Any]]


@dataclass(frozen=True)
class GatewayConfig:
    """The whole site config, parsed and validated once at start-up: the inside of the
    gateway reads these typed values, never the TOML."""

    path: Path
    site: SiteConfig
    store: StoreConfig
    #: devices of every driver family, each with its own options type, hence Any
    devices: tuple[DeviceConfig[Any], ...]
    #: component sections by name (``components.SECTIONS``), each its component's typed config
    sections: Mapping[str, SectionConfig]
    #: worth a look, never a reason not to start (e.g. a serial port not plugged in yet)
    warnings: tuple[Problem, ...] = ()
    actuators: ActuatorsConfig = field(default_factory=ActuatorsConfig)

    @property
    def config_dir(self) -> Path:
        return self.path.parent

    @property
    def points(self) -> dict[str, PointSpec]:
        return {f"{d.name}/{p.name}": p for d in self.devices for p in d.points}

    def device(self, name: str) -> DeviceConfig[Any] | None:
        return next((d for d in self.devices if d.name == name), None)

    @overload
    def section(self, name: str) -> SectionConfig | None: ...
    @overload
    def section(self, name: str, kind: type[S]) -> S | None: ...
    def section(self, name: str, kind: type[S] | None = None) -> SectionConfig | S | None:
        """The typed config of section ``name``, None when the site has no such section; with
        ``kind``, a TypeError unless it is one (the section registry names another parser)."""
        value = self.sections.get(name)
        if value is not None and kind is not None and not isinstance(value, kind):
            raise TypeError(f"section [{name}] holds {type(value).__name__}, not {kind.__name__}")
        return value

    @property
    def nonfatal_problems(self) -> list[Problem]:
        """Problems the daemon starts with (in rule files), from the sections that report them."""
        return [p for s in self.sections.values() for p in s.nonfatal_problems]


def load_config(path: Path | str, *, check_data_dir: bool = True) -> GatewayConfig:
    """Parse and validate ``path``; raises ConfigError listing every problem found."""
    path = Path(path)
    problems = Problems(str(path))
    raw = load_toml(path, problems)
    if raw is None:
        raise ConfigError(problems.items)
    return _checked(raw, path, problems, check_data_dir)


def parse_config_text(text: str, path: Path | str, *, check_data_dir: bool = True) -> GatewayConfig:
    """As ``load_config``, for the text of ``path`` already read (files it names are still read)."""
    path = Path(path)
    problems = Problems(str(path))
    raw = parse_toml(text, problems)
    if raw is None:
        raise ConfigError(problems.items)
    return _checked(raw, path, problems, check_data_dir)


def _checked(raw: dict[str, Any], path: Path, problems: Problems, check_data_dir: bool) -> GatewayConfig:
    config = parse_config(raw, path.resolve(), problems, check_data_dir=check_data_dir)
    if problems:
        raise ConfigError(list(problems.items), list(config.nonfatal_problems) if config else [])
    assert config is not None
    return config


def parse_config(
    raw: dict[str, Any], path: Path, problems: Problems, *, check_data_dir: bool = True
) -> GatewayConfig | None:
    config_dir = path.parent
    known_sections = list(CORE_SECTIONS) + [section.name for section in SECTIONS]
    for key in raw:
        if key not in known_sections:
            problems.add(key, f"unknown section '{key}'{did_you_mean(key, known_sections)}")

    root = Table(raw, problems)
    site = None
    if "gateway" in raw:
        site = _parse_site(root.table("gateway"), config_dir, problems, check_data_dir)
    else:
        problems.add("gateway", 'is required: a [gateway] table with at least id = "..."')
    store = _parse_store(root.table("store"))
    devices = _parse_devices(root.tables("devices"), config_dir, problems)
    if site is None:
        return None

    points = {f"{d.name}/{p.name}": p for d in devices for p in d.points}
    actuators = parse_actuators_section(raw.get("actuators", {}), problems, points)
    ctx = SectionContext(site, config_dir, points, {d.name: d for d in devices})
    sections: dict[str, SectionConfig] = {}
    for section in SECTIONS:
        if section.name not in raw:
            continue
        try:
            parser = load_target(section.parser, "a section parser", is_section_parser)
        except (ImportError, AttributeError):
            problems.add(
                section.name, f"section '{section.name}' is not supported by this build of the gateway"
            )
            continue
        parsed = parser(raw[section.name], problems, ctx)
        if parsed is not None:
            sections[section.name] = parsed
    return GatewayConfig(path, site, store, tuple(devices), sections, tuple(problems.warnings), actuators)


def _parse_site(table: Table, config_dir: Path, problems: Problems, check_dir: bool) -> SiteConfig | None:
    site_id = table.str("id")
    if site_id is not None and not is_valid_name_part(site_id):
        table.error("id", "use letters, digits, '_', '-' and '.' only")
    name = table.str("name", site_id or "")
    latitude = table.float("latitude", None, min=-90, max=90)
    longitude = table.float("longitude", None, min=-180, max=180)
    if table.has("latitude") != table.has("longitude"):
        table.error(
            "longitude" if table.has("latitude") else "latitude",
            "set both latitude and longitude, or neither",
        )
    timezone = table.str("timezone", "UTC")
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name too long for a file name, or a directory such as "Europe".
        table.error(
            "timezone", f"unknown time zone '{timezone[:60]}' (use an IANA name such as Europe/Amsterdam)"
        )
    data_dir_text = table.str("data_dir", os.environ.get("STATE_DIRECTORY", "data"))
    log_level = table.str("log_level", "info", choices=LOG_LEVELS)
    table.finish()
    if "\0" in data_dir_text:
        table.error("data_dir", "contains a NUL character; write a directory path")
        return None
    if site_id is None:
        return None
    data_dir = (config_dir / data_dir_text).resolve()
    if check_dir:
        problem = data_dir_problem(data_dir)
        if problem:
            table.error("data_dir", problem)
    return SiteConfig(site_id, name, latitude, longitude, timezone, data_dir, log_level)


def data_dir_problem(data_dir: Path) -> str | None:
    """Why the gateway could not keep its buffer in ``data_dir``, or None if it can."""
    probe = data_dir
    try:
        while not probe.exists():
            if probe.parent == probe:
                break
            probe = probe.parent
    except OSError as exc:  # a name longer than the filesystem allows, say
        return f"'{str(data_dir)[:80]}' cannot be used: {exc.strerror or exc}"
    if not probe.is_dir():
        return f"'{probe}' is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"'{probe}' is not writable by this user"
    return None


def _parse_store(table: Table) -> StoreConfig:
    defaults = StoreConfig()
    flush_interval = table.duration("flush_interval", defaults.flush_interval, min=0.001)
    flush_readings = table.int("flush_readings", defaults.flush_readings, min=1)
    queue_size = table.int("queue_size", defaults.queue_size, min=100)
    max_bytes = table.size("max_bytes", defaults.max_bytes)
    hard_max_bytes = table.size("hard_max_bytes", max(defaults.hard_max_bytes, max_bytes or 0))
    max_age = table.duration("max_age", defaults.max_age, min=60)
    retention_interval = table.duration("retention_interval", defaults.retention_interval, min=1)
    if hard_max_bytes < max_bytes:
        table.error("hard_max_bytes", f"must be at least max_bytes ({max_bytes})")
    table.finish()
    return StoreConfig(
        flush_interval, flush_readings, queue_size, max_bytes, hard_max_bytes, max_age, retention_interval
    )


def _parse_devices(tables: list[Table], config_dir: Path, problems: Problems) -> list[DeviceConfig[Any]]:
    drivers = available_drivers()
    devices: list[DeviceConfig[Any]] = []
    seen: dict[str, str] = {}
    wired: list[WiredDevice] = []
    for table in tables:
        name = table.str("name")
        driver_name = table.str("driver")
        interval = table.duration("interval", None, min=0.01)
        enabled = table.bool("enabled", True)
        stale_after = table.duration("stale_after", None, min=0.1)
        options_table = table.table("options")
        table.finish(extra_known=("options",))
        if name is not None:
            if not is_valid_name_part(name):
                table.error("name", f"'{name}' may use letters, digits, '_', '-' and '.' only")
            elif name in seen:
                table.error("name", f"device '{name}' is defined twice (first at {seen[name]})")
            seen.setdefault(name, table.prefix)
        if driver_name is None:
            continue
        if driver_name not in drivers:
            table.error(
                "driver",
                f"unknown driver '{driver_name}'{did_you_mean(driver_name, drivers)};"
                f" installed: {', '.join(sorted(drivers)) or 'none'}",
            )
            continue
        try:
            driver_class = load_driver(driver_name)
        except Exception as exc:  # a broken third-party package must not hide other problems
            table.error("driver", f"driver '{driver_name}' failed to load: {exc}")
            continue
        before = len(problems.items)
        options = driver_class.parse_options(options_table, config_dir)
        if len(problems.items) > before or name is None:
            continue
        points = tuple(driver_class.declare_points(options))
        names = [p.name for p in points]
        for duplicate in sorted({n for n in names if names.count(n) > 1}):
            table.error("options", f"point '{name}/{duplicate}' is declared more than once")
        if interval is None and _is_polled(driver_class):
            interval = driver_class.default_interval(options)
        devices.append(
            DeviceConfig(name, driver_name, interval, enabled, options, points, driver_class, stale_after)
        )
        line = options.serial_line() if enabled and isinstance(options, OpensSerialPort) else None
        if line is not None:
            wired.append(WiredDevice(name, driver_name, table.prefix, line))
    check_serial_wiring(wired, problems)
    return devices


def _is_polled(driver_class: type[Driver[OptionsT]]) -> bool:
    return driver_class.poll is not Driver.poll
