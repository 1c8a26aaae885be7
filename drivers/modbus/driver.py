"""The ``modbus`` driver: one device instance polled through the shared bus of its line.

Owns the device's read plan, its circuit breaker, its online state and its writes; the
line itself (queueing, frame gap, connection) belongs to ``bus.Bus``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.driver import DemoPart, Driver, DriverContext, PointSpec, WriteError
from gateway.model import Reading, Value
from gateway.options import Table as OptionTable

from .breaker import CircuitBreaker
from .bus import (
    POLL_PRIORITY,
    WRITE_PRIORITY,
    Bus,
    BusConflict,
    BusError,
    BusUnavailable,
    ExceptionResponse,
)
from .codec import EncodeError, decode_registers, encode_bit, encode_registers
from .constants import READ_FUNCTION, ExceptionCode, FunctionCode, Table, exception_name
from .options import ModbusOptions, parse_modbus_options
from .planner import Block, plan_reads, split_block
from .profile import PointDef

if TYPE_CHECKING:
    from gateway.config import DeviceConfig

SHARED_FAMILY = "modbus"
ONLINE_POINT = "online"
_MAX_NAMES_IN_LOG = 4


class ModbusDriver(Driver[ModbusOptions]):
    demo = DemoPart(
        site="drivers.modbus/demo-site.toml",
        peer="drivers.modbus.demo_peer:simulated_modbus",
        defaults={"modbus_enabled": "false", "modbus_port": "502"},
    )
    name = "modbus"

    @classmethod
    def parse_options(cls, options: OptionTable, config_dir: Path) -> ModbusOptions | None:
        return parse_modbus_options(options, config_dir)

    @classmethod
    def declare_points(cls, options: ModbusOptions | None) -> Sequence[PointSpec]:
        if options is None:  # its problems are reported already
            return []
        specs = [PointSpec(p.name, p.unit, p.kind, p.writable, p.description) for p in options.profile.points]
        specs.append(PointSpec(ONLINE_POINT, None, "bool", False, "device answers on the bus"))
        return specs

    def __init__(self, device: DeviceConfig[ModbusOptions], ctx: DriverContext):
        super().__init__(device, ctx)
        self.options: ModbusOptions = device.options
        self._points = {p.name: p for p in self.options.profile.points}
        self._blocks: list[Block] = plan_reads((p.span() for p in self._points.values()), self.options.limits)
        self._breaker = CircuitBreaker(
            self.options.backoff_min, self.options.backoff_max, self.options.failures_to_offline
        )
        self._bus: Bus | None = None
        self._online: bool | None = None
        self._reported: set[tuple[str, str]] = set()
        self.counters: dict[str, int] = {
            "polls": 0,
            "requests": 0,
            "readings": 0,
            "skipped_polls": 0,
            "timeouts": 0,
            "crc_errors": 0,
            "exceptions": 0,
            "bus_unavailable": 0,
            "protocol_errors": 0,
            "writes": 0,
            "write_errors": 0,
            "verify_failures": 0,
            "invalid_values": 0,
            "offline_transitions": 0,
        }
        self._last_error: str | None = None

    @property
    def unit(self) -> int:
        return self.options.unit

    @property
    def blocks(self) -> tuple[Block, ...]:
        return tuple(self._blocks)

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        settings = self.options.bus
        bus: Bus = await self.ctx.shared.acquire(SHARED_FAMILY, settings.key, lambda: _new_bus(settings))
        try:
            bus.attach(self.device.name, settings)
        except BusConflict:
            await self.ctx.shared.release(SHARED_FAMILY, settings.key)
            raise
        self._bus = bus

    async def close(self) -> None:
        if self._bus is None:
            return
        self._bus.detach(self.device.name)
        self._bus = None
        await self.ctx.shared.release(SHARED_FAMILY, self.options.bus.key)

    # -- polling ---------------------------------------------------------------------------

    async def poll(self) -> Sequence[Reading]:
        bus = self._require_bus()
        self.counters["polls"] += 1
        now = self.ctx.clock.monotonic()
        if not self._breaker.allows(now):
            # The whole point of the breaker: an absent slave costs the line nothing until due.
            self.counters["skipped_polls"] += 1
            return []
        readings: list[Reading] = []
        answered = False
        for block in list(self._blocks):
            try:
                async with bus.turn(POLL_PRIORITY):
                    values = await self._read_block(bus, block)
            except ExceptionResponse as exc:
                if not exc.device_fault:
                    answered = True
                    self._on_exception(block, exc)
                    continue
                self._on_failure(block, exc)
                readings.extend(self._online_change(False))
                return readings
            except BusError as exc:
                self._on_failure(block, exc)
                readings.extend(self._online_change(False))
                return readings
            answered = True
            self._reported.discard((block.describe(), "any"))
            readings.extend(self._decode(block, values))
        if answered:
            if self._breaker.success():
                self.log.warning(
                    "event=device_online device=%s unit=%d bus=%s",
                    self.device.name,
                    self.unit,
                    self.options.bus.describe(),
                )
            readings.extend(self._online_change(True))
        self.counters["readings"] += len(readings)
        return readings

    async def _read_block(self, bus: Bus, block: Block) -> list[int] | list[bool]:
        function = READ_FUNCTION[block.table]
        self.counters["requests"] += 1

        def call(client: Any) -> Any:
            kwargs = {"count": block.count, "device_id": self.unit}
            if block.table is Table.COIL:
                return client.read_coils(block.start, **kwargs)
            if block.table is Table.DISCRETE_INPUT:
                return client.read_discrete_inputs(block.start, **kwargs)
            if block.table is Table.HOLDING_REGISTER:
                return client.read_holding_registers(block.start, **kwargs)
            return client.read_input_registers(block.start, **kwargs)

        response = await bus.execute(
            call, unit=self.unit, function=int(function), timeout=self.options.timeout
        )
        if block.table.is_bit:
            bits = list(response.bits)
            if len(bits) < block.count:
                raise _short_reply(block, len(bits))
            return bits[: block.count]
        registers = list(response.registers)
        if len(registers) < block.count:
            raise _short_reply(block, len(registers))
        return registers

    def _decode(self, block: Block, values: list[int] | list[bool]) -> list[Reading]:
        now = self.ctx.clock.time()
        out: list[Reading] = []
        for span in block.spans:
            point = self._points[span.name]
            first = span.address - block.start
            try:
                if block.table.is_bit:
                    value: Value = bool(values[first])
                else:
                    value = decode_registers(values[first : first + span.count], point.encoding)
            except (ValueError, UnicodeDecodeError) as exc:
                self._bad_value(point, str(exc))
                continue
            if isinstance(value, float) and not math.isfinite(value):
                self._bad_value(point, f"{value} is not a number")
                continue
            out.append(self.ctx.reading(point.name, value, point.unit, ts=now))
        return out

    def _bad_value(self, point: PointDef, why: str) -> None:
        self.counters["invalid_values"] += 1
        key = (point.name, "invalid")
        if key not in self._reported:
            self._reported.add(key)
            self.log.warning(
                "event=invalid_value device=%s point=%s register=%s error=%r",
                self.device.name,
                point.name,
                point.describe(),
                why,
            )

    def _on_exception(self, block: Block, exc: ExceptionResponse) -> None:
        self.counters["exceptions"] += 1
        self._last_error = f"{block.describe()}: {exc}"
        if exc.code == ExceptionCode.ILLEGAL_DATA_ADDRESS and len(block.spans) > 1:
            # The device has holes in its map that coalescing bridged: read its points apart
            # from now on, so one missing register no longer hides its neighbours.
            parts = split_block(block)
            if len(parts) == 1:
                parts = split_block(block, apart=True)
            if len(parts) > 1:
                index = self._blocks.index(block)
                self._blocks[index : index + 1] = parts
                self.log.warning(
                    "event=block_split device=%s unit=%d register=%s points=%s reason=%s requests_now=%d",
                    self.device.name,
                    self.unit,
                    block.describe(),
                    _names(block),
                    exception_name(exc.code),
                    len(self._blocks),
                )
                return
        key = (block.describe(), "any")
        log = self.log.warning if key not in self._reported else self.log.debug
        self._reported.add(key)
        log(
            "event=exception_response device=%s unit=%d point=%s register=%s code=%d error=%r",
            self.device.name,
            self.unit,
            _names(block),
            block.describe(),
            exc.code,
            str(exc),
        )

    def _on_failure(self, block: Block, exc: BusError) -> None:
        counter = {
            "timeout": "timeouts",
            "crc_error": "crc_errors",
            "bus_unavailable": "bus_unavailable",
            "protocol_error": "protocol_errors",
            "exception": "exceptions",
        }.get(exc.kind, "protocol_errors")
        self.counters[counter] += 1
        # a bus that cannot be reached is not about one register block
        self._last_error = str(exc) if isinstance(exc, BusUnavailable) else f"{block.describe()}: {exc}"
        now = self.ctx.clock.monotonic()
        opened = self._breaker.failure(now) if exc.device_fault or isinstance(exc, BusUnavailable) else False
        event = exc.kind
        self.log.warning(
            "event=%s device=%s unit=%d point=%s register=%s bus=%s error=%r retry_in=%.1fs",
            event,
            self.device.name,
            self.unit,
            _names(block),
            block.describe(),
            self.options.bus.describe(),
            str(exc),
            self._breaker.retry_in(now),
        )
        if opened:
            self.counters["offline_transitions"] += 1
            self.log.warning(
                "event=device_offline device=%s unit=%d bus=%s reason=%s retry_in=%.1fs",
                self.device.name,
                self.unit,
                self.options.bus.describe(),
                exc.kind,
                self._breaker.retry_in(now),
            )

    def _online_change(self, online: bool) -> list[Reading]:
        if not online and not self._breaker.is_open:
            return []  # one failure below the threshold: not yet offline
        if self._online is online:
            return []
        self._online = online
        return [self.ctx.reading(ONLINE_POINT, online)]

    # -- writes ----------------------------------------------------------------------------

    async def write(self, point: str, value: Value) -> None:
        bus = self._require_bus()
        spec = self._points.get(point)
        where = f"{self.device.name}/{point}"
        if spec is None or not spec.writable:
            raise WriteError(f"{where} is not writable")
        self.counters["writes"] += 1
        try:
            payload: bool | list[int] = (
                encode_bit(value) if spec.table is Table.COIL else encode_registers(value, spec.encoding)
            )
        except EncodeError as exc:
            self.counters["write_errors"] += 1
            raise WriteError(f"{where}: {exc}") from None
        try:
            async with bus.turn(WRITE_PRIORITY):
                await self._send_write(bus, spec, payload)
                if self.options.verify_writes:
                    block = Block(spec.table, spec.address, spec.count, (spec.span(),))
                    echoed = await self._read_block(bus, block)
                    expected = [payload] if isinstance(payload, bool) else payload
                    if list(echoed) != expected:
                        self.counters["verify_failures"] += 1
                        self.log.warning(
                            "event=write_verify_failed device=%s unit=%d point=%s register=%s "
                            "wrote=%s read_back=%s",
                            self.device.name,
                            self.unit,
                            point,
                            spec.describe(),
                            expected,
                            list(echoed),
                        )
                        raise WriteError(
                            f"{where}: device kept {list(echoed)} after writing {expected} "
                            f"to {spec.describe()} (read-back verification)"
                        )
        except BusError as exc:
            self.counters["write_errors"] += 1
            if exc.device_fault:
                self._breaker.failure(self.ctx.clock.monotonic())
            self._last_error = f"write {point}: {exc}"
            self.log.warning(
                "event=write_failed device=%s unit=%d point=%s register=%s error=%r",
                self.device.name,
                self.unit,
                point,
                spec.describe(),
                str(exc),
            )
            raise WriteError(
                f"{where}: write to {spec.describe()} of unit {self.unit} failed: {exc}"
            ) from None
        except WriteError:
            self.counters["write_errors"] += 1
            raise
        self.log.info(
            "event=write device=%s unit=%d point=%s register=%s value=%r",
            self.device.name,
            self.unit,
            point,
            spec.describe(),
            value,
        )
        readback = bool(payload) if isinstance(payload, bool) else decode_registers(payload, spec.encoding)
        await self.ctx.publish([self.ctx.reading(point, readback, spec.unit)])

    async def _send_write(self, bus: Bus, spec: PointDef, payload: bool | list[int]) -> None:
        unit = self.unit
        if isinstance(payload, bool):
            function = FunctionCode.WRITE_SINGLE_COIL
            await bus.execute(
                lambda c: c.write_coil(spec.address, payload, device_id=unit),
                unit=unit,
                function=int(function),
                timeout=self.options.timeout,
            )
            return
        if len(payload) == 1 and not self.options.profile.write_multiple:
            await bus.execute(
                lambda c: c.write_register(spec.address, payload[0], device_id=unit),
                unit=unit,
                function=int(FunctionCode.WRITE_SINGLE_REGISTER),
                timeout=self.options.timeout,
            )
            return
        await bus.execute(
            lambda c: c.write_registers(spec.address, payload, device_id=unit),
            unit=unit,
            function=int(FunctionCode.WRITE_MULTIPLE_REGISTERS),
            timeout=self.options.timeout,
        )

    # -- health ----------------------------------------------------------------------------

    def _require_bus(self) -> Bus:
        if self._bus is None:
            raise BusUnavailable(f"{self.device.name}: driver is not open")
        return self._bus

    def health(self) -> dict[str, Any]:
        now = self.ctx.clock.monotonic()
        report: dict[str, Any] = {
            "online": self._online,
            "unit": self.unit,
            "profile": self.options.profile.name,
            "requests_per_poll": len(self._blocks),
            "breaker": "open" if self._breaker.is_open else "closed",
            "retry_in": round(self._breaker.retry_in(now), 3),
            "last_error": self._last_error,
            **self.counters,
            # failures by reason in plain words, for `gateway status`
            "errors": {
                "no answer": self.counters["timeouts"],
                "bad checksum": self.counters["crc_errors"],
                "request refused by device": self.counters["exceptions"],
                "bus unavailable": self.counters["bus_unavailable"],
                "garbled reply": self.counters["protocol_errors"],
                "invalid value": self.counters["invalid_values"],
                "write failed": self.counters["write_errors"],
            },
        }
        if self._bus is not None:
            report["bus"] = self._bus.health()
        return report


async def _new_bus(settings: Any) -> Bus:
    return Bus(settings)


def _short_reply(block: Block, got: int) -> BusError:
    from .bus import ProtocolError

    return ProtocolError(f"asked {block.count} values from {block.describe()}, got {got}")


def _names(block: Block) -> str:
    names = [s.name for s in block.spans]
    if len(names) <= _MAX_NAMES_IN_LOG:
        return ",".join(names)
    return ",".join(names[:_MAX_NAMES_IN_LOG]) + f",+{len(names) - _MAX_NAMES_IN_LOG}"
