"""One Modbus line (serial port or TCP endpoint) and the single task-free scheduler in front of it.

Every device on the line takes turns through a priority lock (writes before polls), the
inter-frame gap is honoured, and failures come back as typed errors the driver can log.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from .breaker import CircuitBreaker
from .constants import ExceptionCode, exception_name
from .options import BusSettings, Transport
from .wire import looks_like_reply, rtu_crc_ok

log = logging.getLogger("gateway.driver.modbus")

WRITE_PRIORITY = 0
POLL_PRIORITY = 1
#: a serial adapter or TCP peer that cannot be opened is retried with this backoff
CONNECT_BACKOFF_MIN = 1.0
CONNECT_BACKOFF_MAX = 30.0
PYMODBUS_BACKSTOP_TIMEOUT = 3600.0


def _quiet_pymodbus() -> None:
    # pymodbus logs multi-line frame dumps for conditions this driver already reports as one
    # key=value line with device, point and register; keep them for debug sessions only.
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


class BusError(Exception):
    """A request that got no usable answer. ``kind`` is the log/health counter name."""

    kind = "error"
    #: True when the device (not the line) is to blame, so its breaker should count it
    device_fault = True


class RequestTimeout(BusError):
    kind = "timeout"


class CrcError(BusError):
    kind = "crc_error"


class BusUnavailable(BusError):
    """The port or endpoint cannot be opened or vanished (unplugged adapter, refused TCP)."""

    kind = "bus_unavailable"
    device_fault = False


class ExceptionResponse(BusError):
    """The device answered with a Modbus exception (illegal address, busy, ...)."""

    kind = "exception"

    def __init__(self, code: int):
        self.code = code
        # A TCP-to-RTU gateway reporting that the slave behind it is silent is a dead device
        # for the breaker, not an answer.
        self.device_fault = code in (
            ExceptionCode.GATEWAY_PATH_UNAVAILABLE,
            ExceptionCode.GATEWAY_TARGET_FAILED_TO_RESPOND,
        )
        super().__init__(f"exception {code} ({exception_name(code)})")


class ProtocolError(BusError):
    kind = "protocol_error"


class BusConflict(Exception):
    """Two devices describe the same line with different settings."""


@dataclass
class BusStats:
    requests: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    exceptions: int = 0
    connects: int = 0
    connect_failures: int = 0
    waiting: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class PriorityLock:
    """A lock granted to the waiter with the lowest (priority, arrival) when it frees up."""

    def __init__(self) -> None:
        self._busy = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    async def acquire(self, priority: int) -> None:
        if not self._busy and not self._waiters:
            self._busy = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted and cancelled in the same instant: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._busy = False


class Bus:
    """The one owner of a line. Acquire through ``ctx.shared`` so devices share it."""

    def __init__(self, settings: BusSettings):
        _quiet_pymodbus()
        self.settings = settings
        self.stats = BusStats()
        self.users: dict[str, BusSettings] = {}
        self._lock = PriorityLock()
        self._client = self._make_client(settings)
        self._rx_tail = b""
        self._last_frame_end = 0.0
        self._connect_breaker = CircuitBreaker(CONNECT_BACKOFF_MIN, CONNECT_BACKOFF_MAX)
        self._closed = False

    def _make_client(self, s: BusSettings) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        # Retries, reconnects and timeouts are ours (breaker, per-device and connect timeouts);
        # pymodbus only frames and matches. Its own timeout is a backstop beyond any of ours.
        common: dict[str, Any] = dict(
            retries=0, reconnect_delay=0, timeout=PYMODBUS_BACKSTOP_TIMEOUT, trace_packet=self._tap
        )
        if s.transport is Transport.RTU:
            return AsyncModbusSerialClient(
                s.serial_port,
                framer=FramerType.RTU,
                baudrate=s.baudrate,
                parity=s.parity,
                stopbits=s.stopbits,
                bytesize=s.bytesize,
                **common,
            )
        framer = FramerType.RTU if s.transport is Transport.RTU_OVER_TCP else FramerType.SOCKET
        return AsyncModbusTcpClient(s.host, port=s.port, framer=framer, **common)

    def _tap(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx_tail = data  # pymodbus hands over its whole receive buffer each time
        return data

    def attach(self, device: str, settings: BusSettings) -> None:
        """Register ``device`` as a user of this line; refuse settings that disagree."""
        for other, theirs in self.users.items():
            if other != device and theirs.line_settings() != settings.line_settings():
                raise BusConflict(
                    f"device {device} wants {settings.describe()} but device {other} already uses "
                    f"{theirs.describe()} on the same line; set the same transport and serial settings"
                )
        self.users[device] = settings

    def detach(self, device: str) -> None:
        self.users.pop(device, None)

    @property
    def connected(self) -> bool:
        return self._client.connected

    @asynccontextmanager
    async def turn(self, priority: int) -> AsyncIterator[None]:
        self.stats.waiting += 1
        try:
            await self._lock.acquire(priority)
        finally:
            self.stats.waiting -= 1
        try:
            yield
        finally:
            self._last_frame_end = asyncio.get_running_loop().time()
            self._lock.release()

    async def execute(
        self, call: Callable[[Any], Awaitable[ModbusPDU]], *, unit: int, function: int, timeout: float
    ) -> ModbusPDU:
        """Run one request; the caller holds the turn. Raises a BusError subclass on failure."""
        await self._ensure_connected()
        await self._respect_frame_gap()
        self._rx_tail = b""
        self.stats.requests += 1
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as the reply does, and the device's task would never stop
            async with asyncio.timeout(timeout):
                response = await call(self._client)
        except TimeoutError:
            if (
                self.settings.transport.is_rtu
                and looks_like_reply(self._rx_tail, unit, function)
                and not rtu_crc_ok(self._rx_tail)
            ):
                self._count(CrcError.kind)
                raise CrcError(f"garbled reply ({len(self._rx_tail)} bytes, CRC mismatch)") from None
            self._count(RequestTimeout.kind)
            raise RequestTimeout(f"no reply within {timeout:g}s") from None
        except ConnectionException as exc:
            self._lost(str(exc))
            raise BusUnavailable(f"{self.settings.describe()}: connection lost") from None
        except ModbusException as exc:
            if not self._client.connected:
                self._lost(str(exc))
                raise BusUnavailable(f"{self.settings.describe()}: connection lost") from None
            self._count(ProtocolError.kind)
            raise ProtocolError(str(exc).strip()) from None
        except OSError as exc:
            self._lost(str(exc))
            raise BusUnavailable(f"{self.settings.describe()}: {exc}") from None
        if response.isError():
            self._count(ExceptionResponse.kind)
            raise ExceptionResponse(getattr(response, "exception_code", 0))
        if response.function_code != function:
            self._count(ProtocolError.kind)
            raise ProtocolError(f"reply to function {response.function_code}, expected {function}")
        return response

    def _count(self, kind: str) -> None:
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        if kind == RequestTimeout.kind:
            self.stats.timeouts += 1
        elif kind == CrcError.kind:
            self.stats.crc_errors += 1
        elif kind == ExceptionResponse.kind:
            self.stats.exceptions += 1

    def _lost(self, why: str) -> None:
        log.warning("event=bus_lost bus=%s error=%r", self.settings.describe(), why)
        self._client.close()

    async def _ensure_connected(self) -> None:
        if self._closed:
            raise BusUnavailable(f"{self.settings.describe()}: bus is closed")
        if self._client.connected:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._connect_breaker.allows(now):
            raise BusUnavailable(
                f"{self.settings.describe()}: not reachable, next attempt in "
                f"{self._connect_breaker.retry_in(now):.1f}s"
            )
        self._client.close()
        self.stats.connects += 1
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                ok = await self._client.connect()
        except (TimeoutError, OSError):
            ok = False
        if not ok or not self._client.connected:
            self.stats.connect_failures += 1
            self._count(BusUnavailable.kind)
            self._connect_breaker.failure(loop.time())
            log.warning(
                "event=bus_connect_failed bus=%s retry_in=%.1fs",
                self.settings.describe(),
                self._connect_breaker.retry_in(loop.time()),
            )
            why = (
                "cannot open the serial port (adapter unplugged, wrong path or no permission)"
                if self.settings.transport is Transport.RTU
                else "cannot connect (device off or unplugged, or wrong address or port)"
            )
            raise BusUnavailable(f"{self.settings.describe()}: {why}")
        if self._connect_breaker.success() or self.stats.connects > 1:
            log.info("event=bus_connected bus=%s", self.settings.describe())

    async def _respect_frame_gap(self) -> None:
        gap = self.settings.frame_gap
        if gap <= 0:
            return
        wait = self._last_frame_end + gap - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)

    def health(self) -> dict[str, Any]:
        return {
            "bus": self.settings.describe(),
            "connected": self.connected,
            "devices": sorted(self.users),
            "requests": self.stats.requests,
            "timeouts": self.stats.timeouts,
            "crc_errors": self.stats.crc_errors,
            "exceptions": self.stats.exceptions,
            "connect_failures": self.stats.connect_failures,
            "queued": self._lock.waiting,
        }

    async def close(self) -> None:
        self._closed = True
        self._client.close()
