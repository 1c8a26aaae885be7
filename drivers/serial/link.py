"""One open serial port shared by the devices on it: opening, reconnecting with backoff, routing bytes.

The device path is resolved at every open, so a ``/dev/serial/by-id/...`` link that vanishes
when the adapter is unplugged and returns on another ttyUSBn is simply followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import serial
import serial_asyncio_fast

from gateway.clock import Clock

from .options import PortOptions

Receiver = Callable[[bytes], None]
log = logging.getLogger("gateway.driver.serial")


class PortConflict(Exception):
    """Two devices want the same port with settings that cannot both hold."""


class _Connection(asyncio.Protocol):
    """Protocol object for one open of the port; a new one per open so stale callbacks are harmless."""

    def __init__(self, link: SerialLink) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.link._deliver(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link._lost(self, exc)


class SerialLink:
    """The single owner of one serial port."""

    def __init__(self, options: PortOptions, clock: Clock) -> None:
        self.options = options
        self.clock = clock
        self.device_path: str | None = None
        self.opens = 0
        self.losses = 0
        self.open_failures = 0
        self.last_error: str | None = None
        self.unrouted_bytes = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.streaming: dict[str, Receiver] = {}
        self._connection: _Connection | None = None
        self._exclusive: Receiver | None = None
        self._open_lock = asyncio.Lock()
        self._transaction_lock = asyncio.Lock()
        self._lost_event = asyncio.Event()
        self._failures = 0
        self._next_attempt = 0.0
        self._closed = False
        self._on_open: list[Callable[[], None]] = []
        self._on_lost: list[Callable[[], None]] = []

    # -- ownership ---------------------------------------------------------------------------
    def check_compatible(self, device: str, options: PortOptions) -> None:
        if options.port != self.options.port:
            return
        mismatch = [
            name
            for name in ("baudrate", "bytesize", "parity", "stopbits")
            if getattr(options, name) != getattr(self.options, name)
        ]
        if mismatch:
            raise PortConflict(
                f"device {device}: port {options.port} is already used at "
                f"{self.options.describe()} by another device; devices sharing a port "
                f"must use the same settings (differs: {', '.join(mismatch)})"
            )

    def add_stream(self, device: str, receiver: Receiver) -> None:
        if self.streaming and device not in self.streaming:
            other = next(iter(self.streaming))
            raise PortConflict(
                f"device {device}: port {self.options.port} is already read by streaming"
                f" device {other}; a sensor that sends by itself needs its own port"
            )
        self.streaming[device] = receiver

    def remove_stream(self, device: str) -> None:
        self.streaming.pop(device, None)

    def on_open(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after every successful open (to send mode-setting commands)."""
        self._on_open.append(callback)

    def on_lost(self, callback: Callable[[], None]) -> None:
        self._on_lost.append(callback)

    def forget(self, callback: Callable[[], None]) -> None:
        for callbacks in (self._on_open, self._on_lost):
            if callback in callbacks:
                callbacks.remove(callback)

    # -- connection ----------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._connection is not None and self._connection.transport is not None

    async def connect(self) -> None:
        """Return once the port is open, retrying with exponential backoff while it is not."""
        async with self._open_lock:
            while not self.is_open:
                delay = self._next_attempt - self.clock.monotonic()
                if delay > 0:
                    await self.clock.sleep(delay)
                try:
                    await self._open()
                except (OSError, serial.SerialException, ValueError) as exc:
                    self._open_failed(exc)

    async def try_connect(self) -> bool:
        """Open the port now if it is closed and the backoff allows; never waits out the backoff."""
        if self.is_open:
            return True
        if self._open_lock.locked() or self._next_attempt > self.clock.monotonic():
            return False
        async with self._open_lock:
            try:
                await self._open()
            except (OSError, serial.SerialException, ValueError) as exc:
                self._open_failed(exc)
        return self.is_open

    async def _open(self) -> None:
        options = self.options
        # Follow by-id / by-path links now, not at start-up: they move when the adapter re-enumerates.
        path = os.path.realpath(options.port)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{options.port} does not exist (adapter unplugged?)")
        loop = asyncio.get_running_loop()
        connection = _Connection(self)
        transport, _ = await serial_asyncio_fast.create_serial_connection(
            loop,
            lambda: connection,
            path,
            baudrate=options.baudrate,
            bytesize=options.bytesize,
            parity=options.parity,
            stopbits=options.stopbits,
            exclusive=options.exclusive or None,
        )
        assert isinstance(transport, asyncio.Transport)
        connection.transport = transport
        if self._closed:
            transport.close()
            raise OSError(f"{options.port} was released while opening")
        self._connection = connection
        self._lost_event = asyncio.Event()
        self._failures = 0
        self.opens += 1
        self.device_path = path
        log.info("event=serial_open port=%s path=%s settings=%s", options.port, path, options.describe())
        for callback in self._on_open:
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 - a device's set-up must not kill the port
                log.warning("event=serial_setup_failed port=%s error=%r", options.port, str(exc))

    def _open_failed(self, exc: BaseException) -> None:
        self._failures += 1
        self.open_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        delay = min(self.options.reconnect_max, self.options.reconnect_min * 2 ** (self._failures - 1))
        delay *= random.uniform(0.8, 1.0)
        self._next_attempt = self.clock.monotonic() + delay
        level = logging.WARNING if self._failures in (1, 2) or self._failures % 20 == 0 else logging.DEBUG
        log.log(
            level,
            "event=serial_open_failed port=%s attempt=%d error=%r retry_in=%.1fs",
            self.options.port,
            self._failures,
            self.last_error,
            delay,
        )

    def _lost(self, connection: _Connection, exc: Exception | None) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        self._lost_event.set()
        if self._closed:
            return
        self.losses += 1
        self.last_error = f"connection lost: {exc}" if exc else "connection closed"
        # Give a re-plugged adapter time to enumerate before the first attempt.
        self._next_attempt = self.clock.monotonic() + self.options.reconnect_min
        log.warning(
            "event=serial_lost port=%s path=%s error=%r",
            self.options.port,
            self.device_path,
            str(exc) if exc else None,
        )
        for callback in list(self._on_lost):
            callback()

    async def wait_lost(self) -> None:
        if self.is_open:
            await self._lost_event.wait()

    def drop(self, reason: str) -> None:
        """Close the current connection so the next ``connect`` reopens the port."""
        if self._connection is not None and self._connection.transport is not None:
            log.warning("event=serial_reopen port=%s reason=%s", self.options.port, reason)
            self._connection.transport.close()

    async def close(self) -> None:
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None and connection.transport is not None:
            connection.transport.close()
        self._lost_event.set()

    # -- data ------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.is_open:
            raise OSError(f"serial port {self.options.port} is not open")
        assert self._connection is not None and self._connection.transport is not None
        self._connection.transport.write(data)
        self.bytes_out += len(data)

    def _deliver(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self._exclusive is not None:
            self._exclusive(data)
        elif self.streaming:
            for receiver in self.streaming.values():
                receiver(data)
        else:
            self.unrouted_bytes += len(data)

    @contextlib.asynccontextmanager
    async def exclusive(self, receiver: Receiver) -> AsyncIterator[None]:
        """While held, every received byte goes to ``receiver`` only (one transaction on the bus)."""
        async with self._transaction_lock:
            self._exclusive = receiver
            try:
                yield
            finally:
                self._exclusive = None

    def health(self) -> dict[str, Any]:
        return {
            "port": self.options.port,
            "device_path": self.device_path,
            "connected": self.is_open,
            "opens": self.opens,
            "losses": self.losses,
            "open_failures": self.open_failures,
            "last_port_error": self.last_error,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "unrouted_bytes": self.unrouted_bytes,
        }
