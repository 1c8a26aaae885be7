"""The ``serial`` driver: a device on a serial port read through one of the sans-IO parsers.

Streaming sensors push every decoded frame; polled devices are asked each interval; writable
points send protocol or templated text commands and wait for the reply when one is expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.driver import DemoPart, Driver, DriverContext, PointSpec, WriteError
from gateway.model import Reading, Value
from gateway.options import Table

from . import protocols
from .events import BadFrame, Event, Frame, Junk
from .link import SerialLink
from .options import SerialOptions, parse_serial_options

if TYPE_CHECKING:
    from gateway.config import DeviceConfig

FAMILY = "serial"
#: readings kept while the store applies back-pressure; beyond this the oldest are dropped
MAX_PENDING = 10_000
#: log every bad frame reason the first time, then every Nth, so a noisy line cannot flood the journal
LOG_EVERY = 100


class _Waiter:
    """A transaction waiting for the event that answers it (or for one that rejects it)."""

    def __init__(self, accepts: Callable[[Event], bool], rejects: Callable[[Event], bool] | None = None):
        self.accepts = accepts
        self.rejects = rejects
        self.future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()


class SerialDriver(Driver[SerialOptions]):
    demo = DemoPart(
        site="drivers.serial/demo-site.toml",
        peer="drivers.serial.demo:pms5003_peer",
        defaults={"serial_air_enabled": "false", "serial_air_port": "/dev/null"},
    )
    name = FAMILY
    options: SerialOptions
    #: streaming sensors (PMS5003, SDS011, GPS) send every second or so
    STALE_AFTER = 60.0

    @classmethod
    def parse_options(cls, options: Table, config_dir: Path) -> SerialOptions | None:
        return parse_serial_options(options, config_dir)

    @classmethod
    def declare_points(cls, options: SerialOptions | None) -> Sequence[PointSpec]:
        if options is None:  # its problems are reported already
            return []
        return protocols.declare_points(options)

    def __init__(self, device: DeviceConfig[SerialOptions], ctx: DriverContext):
        super().__init__(device, ctx)
        self._parser = protocols.make_parser(self.options)
        self._commands = {c.point: c for c in self.options.commands}
        self._units = {p.name: p.unit for p in device.points}
        self._link: SerialLink | None = None
        self._pending: list[Reading] = []
        self._wake = asyncio.Event()
        self._waiter: _Waiter | None = None
        self.frames = 0
        self.ignored_frames = 0
        self.bad_frames: dict[str, int] = {}
        self.junk_bytes = 0
        self.readings_dropped = 0
        self.timeouts = 0
        self.commands_sent = 0
        self.last_frame_at: float | None = None
        self.silence_reopens = 0
        self._last_rx = 0.0

    @property
    def _listens(self) -> bool:
        return self.options.listens

    @property
    def poll_interval(self) -> float | None:
        return self.device.interval if self.options.polled else None

    @property
    def default_stale_after(self) -> float | None:
        # a sign that only answers commands is silent by design
        return self.STALE_AFTER if self._listens else None

    # -- life cycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        port = self.options.port

        async def make() -> SerialLink:
            return SerialLink(port, self.ctx.clock)

        link = await self.ctx.shared.acquire(FAMILY, port.port, make)
        self._link = link
        try:
            link.check_compatible(self.device.name, port)
            if self._listens:
                link.add_stream(self.device.name, self._receive)
        except Exception:
            await self.close()
            raise
        link.on_open(self._configure)
        link.on_lost(self._wake.set)
        if link.is_open:
            self._configure()
        else:
            await link.try_connect()

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        link.remove_stream(self.device.name)
        link.forget(self._configure)
        link.forget(self._wake.set)
        await self.ctx.shared.release(FAMILY, self.options.port.port)

    def _configure(self) -> None:
        assert self._link is not None
        for frame in protocols.setup_commands(self.options):
            self._link.write(frame)
            self.commands_sent += 1

    # -- streaming -----------------------------------------------------------------------------
    async def run(self) -> None:
        link = self._require_link()
        silence = self.options.reopen_after_silence if self._listens else None
        while True:
            if not link.is_open:
                await self._flush()
                await link.connect()
                self._last_rx = self.ctx.clock.monotonic()
            if silence is None:
                await self._wake.wait()
            else:
                quiet_for = self.ctx.clock.monotonic() - self._last_rx
                if quiet_for >= silence:
                    # Some adapters hang with the device node still present: reopening revives them.
                    self.silence_reopens += 1
                    link.drop(f"no data for {quiet_for:.1f}s")
                    await link.wait_lost()
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(silence - quiet_for):
                        await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            await self.ctx.publish(batch)

    # -- polling -------------------------------------------------------------------------------
    async def poll(self) -> Sequence[Reading]:
        link = self._require_link()
        if not await link.try_connect():
            raise OSError(f"serial port {self.options.port.port} is not available: {link.last_error}")
        request = protocols.poll_request(self.options)
        assert request is not None
        await self._transact(request, _Waiter(protocols.is_reading_frame), "no reading in reply")
        batch, self._pending = self._pending, []
        return batch

    async def _transact(
        self, request: bytes, waiter: _Waiter | None, what: str, timeout: float | None = None
    ) -> Event | None:
        link = self._require_link()
        timeout = self.options.response_timeout if timeout is None else timeout
        async with link.exclusive(self._receive):
            if not self._listens:
                # Leftovers of an earlier, timed-out answer must not be taken for this one; a
                # streaming device keeps its buffer so a frame in flight is not cut in half.
                self._parser.reset()
            self._waiter = waiter
            try:
                link.write(request)
                self.commands_sent += 1
                if waiter is None:
                    return None
                try:
                    async with asyncio.timeout(timeout):
                        return await asyncio.shield(waiter.future)
                except TimeoutError:
                    self.timeouts += 1
                    raise TimeoutError(
                        f"{what} to {request!r} within {timeout:g}s on {self.options.port.port}"
                    ) from None
            finally:
                self._waiter = None
                if waiter is not None and not waiter.future.done():
                    waiter.future.cancel()

    # -- writing -------------------------------------------------------------------------------
    async def write(self, point: str, value: Value) -> None:
        where = f"{self.device.name}/{point}"
        command = self._commands.get(point)
        try:
            if command is not None:
                request = command.render(value)
                accepts = protocols.reply_matcher(command.expect)
                rejects = protocols.reply_matcher(command.error)
                timeout = command.timeout
            else:
                builtin = protocols.builtin_write(self.options, point, value)
                if builtin is None:
                    raise WriteError(f"{where} is not writable")
                request, accepts, rejects, timeout = builtin.request, builtin.confirms, None, None
        except ValueError as exc:
            raise WriteError(f"{where}: {exc}") from None
        link = self._require_link()
        if not await link.try_connect():
            raise WriteError(
                f"{where}: serial port {self.options.port.port} is not connected"
                f" ({link.last_error or 'reconnecting'})"
            )
        waiter = _Waiter(accepts, rejects) if accepts is not None else None
        try:
            expected = (
                f"no reply matching {command.expect.pattern!r}"
                if command and command.expect
                else "no confirmation"
            )
            reply = await self._transact(request, waiter, expected, timeout)
        except TimeoutError as exc:
            raise WriteError(f"{where}: {exc}") from None
        except OSError as exc:
            raise WriteError(f"{where}: {exc}") from None
        if rejects is not None and reply is not None and rejects(reply):
            raise WriteError(f"{where}: device refused {request!r}: {getattr(reply, 'text', reply)!r}")
        await self.ctx.publish([self.ctx.reading(point, value, self._units.get(point))])

    # -- receiving (called from the transport, in the event loop) ------------------------------
    def _receive(self, data: bytes) -> None:
        self._last_rx = self.ctx.clock.monotonic()
        for event in self._parser.feed(data):
            waiter = self._waiter
            if waiter is not None and not waiter.future.done():
                if waiter.rejects is not None and waiter.rejects(event):
                    waiter.future.set_result(event)
                    continue
                if waiter.accepts(event):
                    waiter.future.set_result(event)
                    if not (isinstance(event, Frame) and event.samples):
                        continue
            self._count(event)
        if self._pending:
            self._wake.set()

    def _count(self, event: Event) -> None:
        if isinstance(event, Frame):
            if not event.samples:
                self.ignored_frames += 1
                return
            self.frames += 1
            now = self.ctx.clock.time()
            self.last_frame_at = now
            for sample in event.samples:
                self._pending.append(self.ctx.reading(sample.name, sample.value, sample.unit, ts=now))
            if len(self._pending) > MAX_PENDING:
                excess = len(self._pending) - MAX_PENDING
                del self._pending[:excess]
                self.readings_dropped += excess
        elif isinstance(event, BadFrame):
            count = self.bad_frames.get(event.reason, 0) + 1
            self.bad_frames[event.reason] = count
            if count == 1 or count % LOG_EVERY == 0:
                self.log.log(
                    logging.WARNING,
                    "event=bad_frame device=%s reason=%s count=%d text=%r",
                    self.device.name,
                    event.reason,
                    count,
                    event.text,
                )
        elif isinstance(event, Junk):
            self.junk_bytes += event.size

    def _require_link(self) -> SerialLink:
        if self._link is None:
            raise OSError(f"device {self.device.name}: serial port {self.options.port.port} is not open")
        return self._link

    def health(self) -> dict[str, Any]:
        link = self._link.health() if self._link is not None else {"connected": False}
        return {
            **link,
            "protocol": self.options.protocol,
            "mode": self.options.mode,
            "frames": self.frames,
            "bad_frames": dict(self.bad_frames),
            "bad_frames_total": sum(self.bad_frames.values()),
            "junk_bytes": self.junk_bytes,
            "ignored_frames": self.ignored_frames,
            "readings_dropped": self.readings_dropped,
            "timeouts": self.timeouts,
            "commands_sent": self.commands_sent,
            "silence_reopens": self.silence_reopens,
            "last_frame_at": self.last_frame_at,
            # failures by reason in plain words, for `gateway status`
            "errors": {
                **{f"bad frame ({reason})": n for reason, n in self.bad_frames.items()},
                "no answer": self.timeouts,
                "port lost": link.get("losses", 0),
                "port could not be opened": link.get("open_failures", 0),
            },
        }
