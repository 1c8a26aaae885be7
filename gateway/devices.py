"""Running the configured devices: one supervised task per device, restarts with backoff.

A driver that raises is closed, logged and restarted after an exponential backoff; it never
takes the daemon down. Writes to ``device/point`` are routed to the owning driver here.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

from .clock import Clock
from .config import DeviceConfig, GatewayConfig
from .driver import Driver, DriverContext, OptionsT, Publish, WriteError
from .judgement import default_stale_after, device_status
from .model import Reading, Value
from .plain import error_reason, plain_error
from .resources import SharedResources
from .store.state import NamespacedState
from .store.store import Store

log = logging.getLogger("gateway.devices")

MIN_BACKOFF = 1.0
MAX_BACKOFF = 300.0
#: while stopping, a device task still running after this is cancelled again
RECANCEL_INTERVAL = 0.5


@dataclass
class DeviceHealth:
    """What the core knows of one device's driver: its state, restarts, last error and readings."""

    state: str = "starting"  # starting | running | backoff | stopped | disabled
    restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    #: the last reading published by the device, whether polled or pushed by its driver
    last_reading_at: float | None = None
    readings: int = 0
    #: wall-clock time the driver last opened, for "never seen" after a fair wait
    running_since: float | None = None
    polls: int = 0
    poll_errors: int = 0
    writes: int = 0
    write_errors: int = 0
    #: failed polls and driver restarts, by reason in plain words ("connection refused", ...)
    errors: Counter[str] = field(default_factory=Counter)


class DeviceRunner(Generic[OptionsT]):
    """Runs one device's driver: opens it, polls it or lets it push, and restarts it with
    backoff when it fails; the device's health is kept here."""

    def __init__(self, config: DeviceConfig[OptionsT], ctx: DriverContext, clock: Clock):
        self.config = config
        self.ctx = ctx
        self.clock = clock
        self.driver: Driver[OptionsT] | None = None
        self.health = DeviceHealth()
        self._ready = asyncio.Event()
        #: silence after which the device is stale; set from the driver kind once it exists
        self.stale_after: float | None = config.stale_after
        publish = ctx.publish

        async def publish_and_count(batch: Sequence[Reading]) -> None:
            # Every reading counts, pushed ones too (serial, GPIO, LoRaWAN), not only polls.
            if batch:
                self.health.last_reading_at = self.clock.time()
                self.health.readings += len(batch)
            await publish(batch)

        ctx.publish = publish_and_count

    async def run(self) -> None:
        if not self.config.enabled:
            self.health.state = "disabled"
            return
        backoff = MIN_BACKOFF
        while True:
            driver = self.config.driver_class(self.config, self.ctx)
            if self.config.stale_after is None:
                self.stale_after = default_stale_after(driver.poll_interval, driver.default_stale_after)
            started = self.clock.monotonic()
            try:
                await driver.open()
                self.driver = driver
                self.health.state = "running"
                self.health.running_since = self.clock.time()
                self._ready.set()
                if driver.poll_interval is not None and type(driver).poll is not Driver.poll:
                    await self._poll_loop(driver, driver.poll_interval)
                else:
                    await driver.run()
                raise RuntimeError("driver returned from run()")
            except asyncio.CancelledError:
                await self._close(driver)
                self.health.state = "stopped"
                raise
            except Exception as exc:  # noqa: BLE001 - isolate every driver fault
                self._ready.clear()
                self.driver = None
                await self._close(driver)
                if self.clock.monotonic() - started > MAX_BACKOFF:
                    backoff = MIN_BACKOFF
                delay = backoff * random.uniform(0.8, 1.2)
                self.health.state = "backoff"
                self.health.restarts += 1
                self.health.last_error = plain_error(exc)
                self.health.last_error_at = self.clock.time()
                self.health.errors[error_reason(exc)] += 1
                log.error(
                    "event=driver_failed device=%s driver=%s error=%r detail=%r retry_in=%.1fs",
                    self.config.name,
                    self.config.driver,
                    self.health.last_error,
                    f"{type(exc).__name__}: {exc}",
                    delay,
                )
                await self.clock.sleep(delay)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _poll_loop(self, driver: Driver[OptionsT], interval: float) -> None:
        next_at = self.clock.monotonic()
        consecutive_failures = 0
        while True:
            try:
                batch = await driver.poll()
                self.health.polls += 1
                consecutive_failures = 0
                if batch:
                    await self.ctx.publish(batch)
            except (OSError, TimeoutError, ValueError) as exc:
                # A failed poll is a device fault, not a driver crash: count it, try next cycle.
                self.health.poll_errors += 1
                consecutive_failures += 1
                self.health.last_error = plain_error(exc)
                self.health.last_error_at = self.clock.time()
                self.health.errors[error_reason(exc)] += 1
                log.warning("event=poll_failed device=%s error=%r", self.config.name, self.health.last_error)
                if consecutive_failures >= 10:
                    raise
            next_at += interval
            delay = next_at - self.clock.monotonic()
            if delay < 0:  # fell behind: skip missed cycles instead of bursting
                next_at = self.clock.monotonic()
                delay = 0
            await self.clock.sleep(delay)

    async def _close(self, driver: Driver[OptionsT]) -> None:
        try:
            await asyncio.shield(driver.close())
        except Exception as exc:  # noqa: BLE001
            log.warning("event=driver_close_failed device=%s error=%r", self.config.name, str(exc))

    async def write(self, point: str, value: Value, timeout: float = 10.0) -> None:
        if self.driver is None:
            raise WriteError(f"{self.config.name}/{point}: device is {self.health.state}, cannot write")
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancellation
                await self.driver.write(point, value)
            self.health.writes += 1
        except Exception:
            self.health.write_errors += 1
            raise

    def health_report(self) -> dict[str, Any]:
        report: dict[str, Any] = dict(vars(self.health))
        report["driver"] = self.config.driver
        detail: dict[str, Any] = {}
        if self.driver is not None:
            try:
                detail = dict(self.driver.health())
            except Exception as exc:  # noqa: BLE001
                detail = {"error": str(exc)}
            report["detail"] = detail
        errors = Counter(self.health.errors)
        errors.update({str(k): int(v) for k, v in (detail.get("errors") or {}).items() if v})
        report["errors"] = dict(errors.most_common())
        # the driver often knows the cause better (the register that timed out, the lost port)
        report["last_error"] = (
            self.health.last_error or detail.get("last_error") or detail.get("last_port_error")
        )
        report["stale_after"] = self.stale_after
        report["status"] = device_status(
            state=self.health.state,
            last_reading_at=self.health.last_reading_at,
            running_since=self.health.running_since,
            stale_after=self.stale_after,
            detail=detail,
            now=self.clock.time(),
        )
        return report


class Devices:
    """All device runners of the gateway; the single entry point for actuator writes."""

    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        publish: Publish,
        clock: Clock,
        shared: SharedResources | None = None,
    ):
        self.config = config
        self.shared = shared or SharedResources()
        #: one runner per device; the families differ, so their options types do (hence Any)
        self.runners: dict[str, DeviceRunner[Any]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        for device in config.devices:
            ctx = DriverContext(
                device=device.name,
                site=config.site,
                clock=clock,
                data_dir=config.site.data_dir,
                config_dir=config.config_dir,
                log=logging.LoggerAdapter(
                    logging.getLogger(f"gateway.driver.{device.driver}"), {"device": device.name}
                ),
                state=NamespacedState(store, f"driver:{device.name}"),
                shared=self.shared,
                publish=publish,
            )
            self.runners[device.name] = DeviceRunner(device, ctx, clock)

    def start(self) -> None:
        """Run every device in a task of its own, outside the service's task group, so that
        ``stop`` bounds how long a stop waits for them: a driver that swallows its
        cancellation (on Python 3.11 ``asyncio.wait_for`` does when the awaited call finishes
        in the same instant) would otherwise hold the task group, and the daemon, forever."""
        loop = asyncio.get_running_loop()
        for runner in self.runners.values():
            self._tasks[runner.config.name] = loop.create_task(
                runner.run(), name=f"device:{runner.config.name}"
            )

    async def stop(self, timeout: float) -> list[str]:
        """Cancel every device's task, again every ``RECANCEL_INTERVAL`` while it runs on, for
        at most ``timeout`` seconds; returns the devices whose drivers would not stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pending = {task for task in self._tasks.values() if not task.done()}
        while pending and loop.time() < deadline:
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(
                pending, timeout=min(RECANCEL_INTERVAL, deadline - loop.time())
            )
        stuck = sorted(name for name, task in self._tasks.items() if task in pending)
        for name in stuck:
            log.error(
                "event=driver_stop_hung device=%s driver=%s waited=%.1fs",
                name,
                self.runners[name].config.driver,
                timeout,
            )
        return stuck

    async def write(self, point: str, value: Value) -> None:
        """Write ``device/point``; raises WriteError with a message naming the point."""
        device, _, name = point.partition("/")
        runner = self.runners.get(device)
        if runner is None:
            raise WriteError(f"{point}: no device named '{device}'")
        spec = runner.config.point(name)
        if spec is None or not spec.writable:
            raise WriteError(f"{point}: not a writable point")
        await runner.write(name, value)

    def health(self) -> dict[str, Any]:
        return {name: r.health_report() for name, r in self.runners.items()}

    async def close(self) -> None:
        await self.shared.close_all()
