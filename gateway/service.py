"""The daemon: one event loop, one TaskGroup, store + hub + devices + optional components.

Components (rules, CoAP API, uplinks, directory) are created from their config sections
through ``components.SECTIONS`` and share the store, hub, devices and clock through a
``ComponentContext``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from . import __version__
from .actuation import EVENT_POINT, Actuation
from .atomicfile import write_atomically
from .clock import Clock, SystemClock
from .components import SECTIONS, Component, ComponentContext, is_component_class
from .config import GatewayConfig
from .devices import Devices
from .driver import load_target
from .hub import Hub
from .judgement import hours_of_buffer_left, judge, status_line
from .overrides import Overrides
from .sdnotify import Notifier
from .snapshot import (
    SNAPSHOT_FILE,
    SNAPSHOT_INTERVAL,
    IngestRate,
    bytes_per_reading,
    in_daemon_thread,
)
from .store.store import Store
from .updates import STATE_NAMESPACE as UPDATE_STATE
from .updates import UpdateRecord, report_updates

log = logging.getLogger("gateway.service")

#: SIGTERM to exit, at most: systemd's TimeoutStopSec and a technician both expect it.
SHUTDOWN_BUDGET = 4.0
#: of that budget, what components and drivers may use before the store's final flush
STOP_COMPONENTS_BUDGET = 2.0


class Service:
    """The running gateway: owns the store, hub, devices, overrides, actuation path and the
    components, the TaskGroup they run in, the watchdog and the health snapshot, and the
    bounded shutdown that stops them in order."""

    def __init__(
        self, config: GatewayConfig, *, clock: Clock | None = None, notifier: Notifier | None = None
    ):
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.notifier = notifier or Notifier()
        self.store = Store(config.site.data_dir, config.store, now=self.clock.time)
        self.hub = Hub(self.store)
        self.devices = Devices(config, self.store, self.hub.publish, self.clock)
        self.overrides = Overrides(self.store, self.clock)
        self.actuation = Actuation(self.devices, self.overrides, self.clock, record=self.hub.publish_nowait)
        self.components: dict[str, Component] = {}
        self.context = ComponentContext(
            config,
            self.store,
            self.hub,
            self.devices,
            self.clock,
            self.overrides,
            self.actuation,
            self.components,
            self.health,
        )
        self.started_at = time.time()
        self.ingest = IngestRate()
        self.snapshot_path = config.site.data_dir / SNAPSHOT_FILE
        self.update_record = UpdateRecord(config.site.data_dir)
        self.snapshot_interval = SNAPSHOT_INTERVAL
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self.on_ready: list[Callable[[], None]] = []
        #: called once when a stop is asked for (SIGTERM, Ctrl-C or ``stop()``)
        self.on_stop: list[Callable[[], None]] = []
        #: False after a shutdown that had to abandon a hung store writer
        self.clean_exit = True

    async def run(self) -> None:
        """Run until ``stop()`` or SIGTERM/SIGINT; always flushes the store on the way out."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        await self.store.open()
        await self.overrides.load()
        if self.actuation.limited_points():
            self.actuation.resume(await self.store.scan_newest(EVENT_POINT, self.actuation.last_writes_in))
        log.info(
            "event=starting version=%s site=%s devices=%d data_dir=%s",
            __version__,
            self.config.site.id,
            len(self.config.devices),
            self.config.site.data_dir,
        )
        try:
            self._build_components()
            for component in self.components.values():
                await component.start()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.store.run(), name="store")
                tg.create_task(self.store.run_retention(), name="retention")
                self.devices.start()
                for name, component in self.components.items():
                    tg.create_task(component.run(), name=f"component:{name}")
                tg.create_task(self._watchdog(), name="watchdog")
                tg.create_task(self._write_snapshots(), name="health-snapshot")
                tg.create_task(self._report_updates(), name="update-report")
                tg.create_task(self._wait_for_stop(), name="stopper")
                self._ready.set()
                self.notifier.ready(self._status_line())
                for callback in self.on_ready:
                    callback()
                log.info(
                    "event=ready devices=%d components=%s",
                    len(self.config.devices),
                    ",".join(self.components) or "none",
                )
        except* _StopRequested:
            pass
        finally:
            self.notifier.stopping()
            await self._shutdown()

    def stop(self) -> None:
        if not self._stop.is_set():
            for callback in self.on_stop:
                callback()
        self._stop.set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def _wait_for_stop(self) -> None:
        await self._stop.wait()
        log.info("event=stopping")
        raise _StopRequested

    async def _shutdown(self) -> None:
        """Stop components, drivers, then flush the store, all within ``SHUTDOWN_BUDGET``.

        The store's flush comes last and keeps the larger share: it holds accepted readings.
        A writer that does not answer (a hung card) is abandoned, and ``clean_exit`` tells
        the caller to exit without joining its thread."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_BUDGET
        stop_by = loop.time() + STOP_COMPONENTS_BUDGET
        for name, component in reversed(list(self.components.items())):
            try:
                await asyncio.wait_for(component.stop(), max(stop_by - loop.time(), 0.1))
            except Exception as exc:  # noqa: BLE001
                log.warning(
                    "event=component_stop_failed component=%s error=%r", name, str(exc) or type(exc).__name__
                )
        await self.devices.stop(max(stop_by - loop.time(), 0.5))
        try:
            await asyncio.wait_for(self.devices.close(), max(stop_by - loop.time(), 0.1))
        except Exception as exc:  # noqa: BLE001
            log.warning("event=devices_close_failed error=%r", str(exc) or type(exc).__name__)
        self.clean_exit = await self.store.close(timeout=max(deadline - loop.time(), 0.5))
        # a stopped daemon leaves no snapshot, so `gateway status` says so at once
        try:
            self.snapshot_path.unlink(missing_ok=True)
        except OSError:
            pass
        log.info("event=stopped last_seq=%d clean=%s", self.store.last_seq, str(self.clean_exit).lower())

    def _build_components(self) -> None:
        for section in SECTIONS:
            section_config = self.config.section(section.name)
            if section_config is not None:
                cls = load_target(section.component, "a component class", is_component_class)
                self.components[section.name] = cls(self.context, section_config)

    async def _watchdog(self) -> None:
        """WATCHDOG=1 only while the loop runs and the store's writer thread answers."""
        interval = (self.notifier.watchdog_interval or 30.0) / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with asyncio.timeout(interval):  # not wait_for: it can swallow a cancellation
                    await self.store.used_bytes()
            except Exception as exc:  # noqa: BLE001
                log.error("event=watchdog_withheld reason=store_unresponsive error=%r", str(exc))
                continue
            self.notifier.watchdog()
            self.notifier.status(self._status_line())

    async def _write_snapshots(self) -> None:
        """The health snapshot for `gateway status`, every ``snapshot_interval``. Written in a
        daemon thread (temp, fsync, rename): never on the loop, never awaiting the store."""
        self.snapshot_path.parent.mkdir(parents=True, exist_ok=True)
        failing = False
        while True:
            self.ingest.sample(time.monotonic(), self.store.committed_readings)
            health = self.health()
            health["snapshot"] = {
                "written_at": time.time(),
                "interval_s": self.snapshot_interval,
                "pid": os.getpid(),
            }
            text = json.dumps(health, default=str, separators=(",", ":"))
            try:
                await in_daemon_thread(functools.partial(write_atomically, self.snapshot_path, text))
                if failing:
                    log.info("event=health_snapshot_recovered path=%s", self.snapshot_path)
                failing = False
            except OSError as exc:
                if not failing:
                    log.warning("event=health_snapshot_failed path=%s error=%r", self.snapshot_path, str(exc))
                failing = True
            await asyncio.sleep(self.snapshot_interval)

    async def _report_updates(self) -> None:
        """The image's last A/B update outcome (committed, or rolled back and why), sent
        upstream once as an ``events/update`` reading."""
        await report_updates(
            self.update_record,
            publish=self.hub.publish_nowait,
            get_reported=lambda: self.store.get_state(UPDATE_STATE, "reported"),
            set_reported=lambda ident: self.store.put_state(UPDATE_STATE, {"reported": ident}),
            now=self.clock.time,
            synced=self.clock.synced,
        )

    def _status_line(self) -> str:
        health = self.health()
        return status_line(health, judge(health, self.clock.time()))

    def health(self) -> dict[str, Any]:
        """Everything a technician or an upstream needs to see; served by the API and CLI.

        ``status`` and ``reasons`` come from ``judgement.judge``, the one judgement shared
        by ``/health``, ``gateway status`` and the systemd ``STATUS=`` line."""
        store = self.store.health()
        rate = self.ingest.readings_per_s()
        per_reading = bytes_per_reading(store)
        ingest_bytes = rate * per_reading if rate is not None and per_reading is not None else None
        health: dict[str, Any] = {
            "gateway": {
                "id": self.config.site.id,
                "name": self.config.site.name,
                "version": __version__,
                "uptime_s": round(time.time() - self.started_at, 1),
                "started_at": self.started_at,
                "timezone": self.config.site.timezone,
                "clock_synced": self.clock.synced(),
            },
            "store": store,
            "buffer": {
                "ingest_readings_per_s": None if rate is None else round(rate, 3),
                "bytes_per_reading": None if per_reading is None else round(per_reading, 1),
                "ingest_bytes_per_s": None if ingest_bytes is None else round(ingest_bytes, 1),
                "hours_left": _rounded(hours_of_buffer_left(store, ingest_bytes)),
            },
            "hub": self.hub.health(),
            "actuation": self.actuation.health(),
            "devices": self.devices.health(),
            "components": {name: c.health() for name, c in self.components.items()},
            "update": self.update_record.record,
        }
        judgement = judge(health, self.clock.time())
        health["status"] = judgement.status
        health["reasons"] = list(judgement.reasons)
        return health


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class _StopRequested(Exception):
    pass
