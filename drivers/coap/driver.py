"""The ``coap`` driver: one CoAP peer (a sensor with a profile, or a neighbouring gateway)
whose resources are observed or polled, with freshness from Max-Age and PUT writes.

Owns the peer's watches (one task per resource), its discovery (gateway peers) and its
online state; decoding is ``profile``'s, link format ``discovery``'s, timing ``freshness``'s.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cbor2

from gateway.coap.linkformat import LinkFormatError, parse_link_format
from gateway.coap.numbers import CONTENT_FORMAT_CBOR, CONTENT_FORMAT_LINK_FORMAT
from gateway.driver import Driver, DriverContext, PointSpec, WriteError
from gateway.model import Reading, Value
from gateway.options import Table

from . import options as coap_options
from .client import Answer, PeerClient, PeerError
from .discovery import gateway_points, select, unmatched
from .freshness import retry_delay
from .options import ONLINE_POINT, CoapOptions, PeerKind, gateway_resource
from .profile import PayloadError, PointMap, ResourceDef, decode, encode_write

if TYPE_CHECKING:
    from gateway.config import DeviceConfig

#: under the data dir: one directory per peer holding its OSCORE sequence numbers
OSCORE_STATE_DIR = "coap-oscore"
WELL_KNOWN_CORE = "/.well-known/core"
#: registrations and polls in flight per peer at once; more would overrun an OSCORE peer's
#: replay window (32 sequence numbers) when a thousand points register together, and the
#: peer would refuse the stragglers. Writes do not wait for this: control comes first.
REQUESTS_IN_FLIGHT = 16


class CoapDriver(Driver[CoapOptions]):
    name = "coap"
    dynamic_points = True
    #: a Max-Age of 60 s (the CoAP default) under the default 120 s cap, plus slack
    STALE_AFTER = 130.0

    @classmethod
    def parse_options(cls, options: Table, config_dir: Path) -> CoapOptions | None:
        return coap_options.parse(options, config_dir)

    @classmethod
    def declare_points(cls, options: CoapOptions | None) -> Sequence[PointSpec]:
        return coap_options.declare(options)

    @classmethod
    def relayed_from(cls, options: Any) -> str | None:
        """Readings of a neighbouring gateway are that gateway's to forward, not ours."""
        if (
            isinstance(options, CoapOptions)
            and options.peer is PeerKind.GATEWAY
            and not options.forward_upstream
        ):
            return options.uri
        return None

    def __init__(self, device: DeviceConfig[CoapOptions], ctx: DriverContext):
        super().__init__(device, ctx)
        self.options: CoapOptions = device.options
        self.client: PeerClient | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._watched: dict[str, ResourceDef] = {}
        self._writable: dict[str, tuple[ResourceDef, PointMap]] = {
            p.name: (r, p) for r in self.options.resources for p in r.points if p.writable
        }
        self._fresh_until: dict[str, float] = {}
        self._last_ts: dict[str, float] = {}
        self._online: bool | None = None
        self._in_flight = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
        self._reported: set[tuple[str, str]] = set()
        self.counters: Counter[str] = Counter()
        self._last_error: str | None = None

    @property
    def poll_interval(self) -> float | None:
        return None  # the driver keeps its own watches; polled resources use poll_interval

    @property
    def default_stale_after(self) -> float | None:
        return self.options.freshness.cap + self.options.freshness.grace

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        state_dir = self.ctx.data_dir / OSCORE_STATE_DIR / self.device.name
        client = PeerClient(self.options.uri, self.options.security, self.options.credentials, state_dir)
        await client.open()
        self.client = client
        self.log.info(
            "event=coap_peer_open device=%s peer=%s kind=%s security=%s resources=%d globs=%s",
            self.device.name,
            self.options.uri,
            self.options.peer,
            self.options.security,
            len(self.options.resources),
            ",".join(self.options.observe_globs) or "-",
        )

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for resource in self.options.resources:
                self._start_watch(resource)
            if self.options.peer is PeerKind.GATEWAY and self.options.observe_globs:
                tg.create_task(self._discover_loop(), name=f"coap-discover:{self.device.name}")

    def _start_watch(self, resource: ResourceDef) -> None:
        if resource.path in self._watched or self._tg is None:
            return
        self._watched[resource.path] = resource
        loop = self._observe_loop if resource.observe else self._poll_loop
        self._tg.create_task(loop(resource), name=f"coap:{self.device.name}:{resource.path}")

    # -- discovery (gateway peers) -----------------------------------------------------------

    async def _discover_loop(self) -> None:
        client = self._require_client()
        failures = 0
        warned: set[str] = set()
        while True:
            try:
                answer = await client.get(WELL_KNOWN_CORE, CONTENT_FORMAT_LINK_FORMAT, self.options.timeout)
                if not answer.ok:
                    raise PeerError(f"{WELL_KNOWN_CORE} answered {answer.describe()}")
                offered = gateway_points(parse_link_format(answer.payload))
            except (PeerError, LinkFormatError) as exc:
                failures += 1
                self._error("discovery", f"device '{self.device.name}' resource '{WELL_KNOWN_CORE}': {exc}")
                await self.ctx.clock.sleep(
                    retry_delay(failures, self.options.retry_min, self.options.retry_max)
                )
                continue
            failures = 0
            self.counters["discoveries"] += 1
            chosen = select(offered, self.options.observe_globs)
            for glob in unmatched(offered, self.options.observe_globs):
                if glob not in warned:
                    warned.add(glob)
                    self.log.warning(
                        "event=coap_glob_matches_nothing device=%s peer=%s glob=%r offered=%d",
                        self.device.name,
                        self.options.uri,
                        glob,
                        len(offered),
                    )
            added = 0
            for point in chosen:
                resource = gateway_resource(point.name, writable=point.writable)
                if resource.path not in self._watched:
                    self._start_watch(resource)
                    added += 1
            self.log.info(
                "event=coap_discovered device=%s peer=%s offered=%d chosen=%d new=%d",
                self.device.name,
                self.options.uri,
                len(offered),
                len(chosen),
                added,
            )
            await self.ctx.clock.sleep(self.options.rediscover)

    # -- observing and polling ---------------------------------------------------------------

    async def _observe_loop(self, resource: ResourceDef) -> None:
        client = self._require_client()
        failures = 0
        while True:
            try:
                async with self._in_flight:
                    observation = await client.observe(
                        resource.uri_path, resource.format.accept, self.options.timeout
                    )
            except PeerError as exc:
                failures += 1
                await self._peer_failed(resource, str(exc), failures)
                continue
            try:
                if not observation.first.ok:
                    failures += 1
                    await self._peer_failed(resource, f"answered {observation.first.describe()}", failures)
                    continue
                failures = 0
                self.counters["registrations"] += 1
                deadline = await self._take(resource, observation.first)
                if not observation.first.observed:
                    # The peer does not do Observe for this resource: ask again when it expires.
                    self.counters["not_observable"] += 1
                    await self.ctx.clock.sleep(
                        max(deadline - self.ctx.clock.monotonic(), self.options.retry_min)
                    )
                    continue
                while True:
                    answer = await observation.next(deadline - self.ctx.clock.monotonic())
                    if answer is None:
                        break
                    self.counters["notifications"] += 1
                    if answer.ok:
                        deadline = await self._take(resource, answer)
                silent = self.ctx.clock.monotonic() >= deadline
                self.counters["reregistrations"] += 1
                self.log.info(
                    "event=coap_reregister device=%s resource=%s reason=%s",
                    self.device.name,
                    resource.uri_path,
                    "no_notification_within_max_age" if silent else "observation_ended",
                )
                if silent:
                    await self._expire(resource)
            finally:
                observation.cancel()

    async def _poll_loop(self, resource: ResourceDef) -> None:
        client = self._require_client()
        failures = 0
        interval = self.options.poll_interval
        next_at = self.ctx.clock.monotonic()
        while True:
            try:
                async with self._in_flight:
                    answer = await client.get(resource.uri_path, resource.format.accept, self.options.timeout)
                if not answer.ok:
                    raise PeerError(f"answered {answer.describe()}")
            except PeerError as exc:
                failures += 1
                await self._peer_failed(resource, str(exc), failures, backoff=False)
            else:
                failures = 0
                self.counters["polls"] += 1
                await self._take(resource, answer, at_least=interval + self.options.timeout)
            next_at += interval
            delay = next_at - self.ctx.clock.monotonic()
            if delay < 0:
                next_at, delay = self.ctx.clock.monotonic(), 0.0
            await self.ctx.clock.sleep(delay)

    async def _take(self, resource: ResourceDef, answer: Answer, at_least: float = 0.0) -> float:
        """Publish what ``answer`` holds; returns the monotonic deadline of the next answer."""
        now_mono = self.ctx.clock.monotonic()
        bound = max(self.options.freshness.bound(answer.max_age), at_least)
        deadline = now_mono + bound
        self._fresh_until[resource.path] = deadline
        now = self.ctx.clock.time()
        try:
            decoded = decode(self.device.name, resource, answer.payload, answer.content_format, now)
        except PayloadError as exc:
            self.counters["bad_payloads"] += 1
            self._error(f"payload:{resource.path}", str(exc))
            await self._set_online()
            return deadline
        readings: list[Reading] = []
        for item in decoded:
            ts = item.ts if item.ts is not None else now
            if item.ts is not None and ts <= self._last_ts.get(item.point, float("-inf")):
                # A re-registration answers the latest value again: it is not a new reading.
                self.counters["repeated_readings"] += 1
                continue
            self._last_ts[item.point] = ts
            readings.append(self.ctx.reading(item.point, item.value, item.unit, ts=ts))
        self._reported.discard((f"payload:{resource.path}", "error"))
        if readings:
            self.counters["readings"] += len(readings)
            await self.ctx.publish(readings)
        await self._set_online()
        return deadline

    async def _expire(self, resource: ResourceDef) -> None:
        self.counters["silences"] += 1
        self._fresh_until.pop(resource.path, None)
        self._error(
            f"silent:{resource.path}",
            f"device '{self.device.name}' resource '{resource.uri_path}': "
            "no notification within its Max-Age; values are stale, re-registering",
        )
        await self._set_online()

    async def _peer_failed(
        self, resource: ResourceDef, why: str, failures: int, backoff: bool = True
    ) -> None:
        self.counters["request_failures"] += 1
        self._error(
            f"request:{resource.path}", f"device '{self.device.name}' resource '{resource.uri_path}': {why}"
        )
        now = self.ctx.clock.monotonic()
        until = self._fresh_until.get(resource.path)
        if until is not None and now >= until:
            self._fresh_until.pop(resource.path, None)
            until = None
        await self._set_online()
        if backoff:
            delay = retry_delay(failures, self.options.retry_min, self.options.retry_max)
            # try again no later than the values expire, so `online` turns false on time
            await self.ctx.clock.sleep(delay if until is None else min(delay, max(until - now, 0.0)))

    async def _set_online(self) -> None:
        now = self.ctx.clock.monotonic()
        online = any(until > now for until in self._fresh_until.values())
        if online is self._online:
            return
        self._online = online
        self.log.warning(
            "event=coap_peer_%s device=%s peer=%s",
            "online" if online else "offline",
            self.device.name,
            self.options.uri,
        )
        await self.ctx.publish([self.ctx.reading(ONLINE_POINT, online)])

    def _error(self, key: str, message: str) -> None:
        self._last_error = message
        first = (key, "error") not in self._reported
        self._reported.add((key, "error"))
        (self.log.warning if first else self.log.debug)(
            "event=coap_error device=%s error=%r", self.device.name, message
        )

    # -- writes ------------------------------------------------------------------------------

    async def write(self, point: str, value: Value) -> None:
        where = f"{self.device.name}/{point}"
        target = self._writable.get(point)
        if target is None:
            raise WriteError(f"{where} is not writable")
        client = self.client
        if client is None:
            raise WriteError(f"{where}: device is not running")
        resource, spec = target
        if self.options.peer is PeerKind.GATEWAY:
            # A gateway's API takes a bare CBOR value and applies it through its own
            # actuation path: its limits, overrides and fail-safes hold there.
            payload, content_format = cbor2.dumps(value), CONTENT_FORMAT_CBOR
        else:
            payload, content_format = encode_write(resource, spec, value)
        self.counters["writes"] += 1
        try:
            answer = await client.put(resource.uri_path, payload, content_format, self.options.timeout)
        except PeerError as exc:
            self.counters["write_errors"] += 1
            self._last_error = f"write {point}: {exc}"
            raise WriteError(f"{where}: {exc}") from None
        if not answer.ok:
            self.counters["write_errors"] += 1
            self._last_error = f"write {point}: {self.options.uri} answered {answer.describe()}"
            raise WriteError(f"{where}: {self.options.uri}{resource.uri_path} answered {answer.describe()}")
        self.log.info(
            "event=write device=%s point=%s peer=%s value=%r",
            self.device.name,
            point,
            self.options.uri,
            value,
        )

    # -- health ------------------------------------------------------------------------------

    def _require_client(self) -> PeerClient:
        if self.client is None:
            raise PeerError(f"{self.device.name}: driver is not open")
        return self.client

    def health(self) -> dict[str, Any]:
        now = self.ctx.clock.monotonic()
        fresh = sum(1 for until in self._fresh_until.values() if until > now)
        return {
            "online": self._online,
            "peer": self.options.uri,
            "kind": str(self.options.peer),
            "security": self.options.security,
            "source": self.relayed_from(self.options) or "this gateway",
            "resources": len(self._watched),
            "fresh_resources": fresh,
            "last_error": self._last_error,
            "counters": dict(self.counters),
            "errors": {
                "no answer or refused": self.counters["request_failures"],
                "payload not understood": self.counters["bad_payloads"],
                "peer fell silent": self.counters["silences"],
                "write failed": self.counters["write_errors"],
            },
        }
