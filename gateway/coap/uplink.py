"""The uplinks component: one task per upstream pushing the buffer north over CoAP, in order.

Each upstream owns a cursor in the store; a batch moves the cursor only once a 2.xx answer
acknowledges it, so restarts resume exactly at the first unacknowledged reading.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..components import ComponentContext
from ..config import GatewayConfig
from ..model import StoredReading
from ..plain import plain_error
from . import numbers
from .credentials import oscore_context
from .senml import BatchId, Dropped
from .uplink_config import UpstreamConfig, UpstreamsConfig
from .uplink_format import dropped_in_range, encode_batch
from .uplink_policy import Action, Backoff, decide

log = logging.getLogger("gateway.coap.uplink")

#: the longest a Max-Age from the upstream may hold the uplink back
MAX_SERVER_DELAY = 3600.0
#: seconds between cursor saves while passing over readings an upstream does not take
CURSOR_SAVE_INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class Batch:
    """Batch ``number`` covers buffer sequence numbers ``after`` < seq <= ``last_seq``: the
    readings still there, plus an announcement of any the hard quota removed."""

    number: int
    readings: list[StoredReading]
    last_seq: int
    after: int
    #: sequence numbers of every reading of the range still in the buffer, those this
    #: upstream's include/exclude leaves out too (None: the same as ``readings``)
    buffered: list[int] | None = None

    def buffered_upto(self, last: int) -> list[int]:
        seqs = [r.seq for r in self.readings] if self.buffered is None else self.buffered
        return [s for s in seqs if s <= last]


class Uplink:
    """Delivers one upstream's stream: gather, persist the in-flight batch, send until acked."""

    def __init__(self, config: UpstreamConfig, ctx: ComponentContext, data_dir: Path):
        self.config = config
        self.store = ctx.store
        self.clock = ctx.clock
        self.data_dir = data_dir
        self.backoff = Backoff(config.retry_min, config.retry_max)
        self.namespace = f"uplink:{config.name}"
        self.cursor = 0
        self.next_number = 1
        self._inflight: tuple[int, int] | None = None  # (batch number, last seq)
        self._cursor_saved_at = float("-inf")  # monotonic; see _pass_by
        self._cursor_saved = 0
        self._context: Any = None
        self._security: Any = None
        # health
        self.state = "starting"
        self.oldest_pending_ts: float | None = None
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        #: attempts failed since the last success, and when the first of them failed
        self.failures_in_row = 0
        self.failing_since: float | None = None
        self.retry_at: float | None = None
        self.batches_sent = 0
        self.readings_sent = 0
        self.bytes_sent = 0
        self.attempts = 0
        self.readings_dropped_announced = 0
        #: devices relaying another gateway's readings: that gateway forwards them, we do not
        self.relayed = relayed_devices(ctx.config)
        self.readings_skipped_relayed = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        cursor = await self.store.get_cursor(self.config.cursor_name)
        if cursor is None:
            cursor = self.store.last_seq
            if self.config.start == "oldest":
                # Just before the oldest reading kept: what retention removed before this
                # upstream existed was never owed to it, so it is not announced as dropped.
                oldest = await self.store.read_after(0, 1)
                cursor = oldest[0].seq - 1 if oldest else self.store.last_seq
            await self.store.set_cursor(self.config.cursor_name, cursor)
        self.cursor = self._cursor_saved = cursor
        inflight = await self.store.get_state(self.namespace, "inflight")
        if isinstance(inflight, dict):
            number, last = int(inflight["batch"]), int(inflight["last"])
            if last > cursor:
                self._inflight = (number, last)
                self.next_number = number
            else:
                self.next_number = number + 1
        await self._open_context()
        log.info(
            "event=uplink_open upstream=%s uri=%s format=%s security=%s cursor=%d next_batch=%d",
            self.config.name,
            self.config.safe_uri,
            self.config.format,
            self.config.security,
            self.cursor,
            self.next_number,
        )

    async def _open_context(self) -> None:
        import aiocoap

        # Name the transports: the defaults would also start DTLS (tinydtls) machinery for
        # plain coap:// upstreams, and the OSCORE transport loads cryptography, EDHOC and
        # filelock (about 10 MB of a Pi's memory) even for an upstream that never uses it.
        transports = {"dtls-psk": ["tinydtls"], "oscore": ["oscore", "udp6"]}.get(
            self.config.security, ["udp6"]
        )
        self._context = await aiocoap.Context.create_client_context(transports=transports)
        credentials = self.config.credentials
        pattern = self._request_message(b"", 0).get_request_uri()
        if self.config.security == "oscore" and credentials and credentials.oscore:
            state_dir = self.data_dir / "oscore" / self.config.name
            self._security = oscore_context(credentials.oscore, state_dir)
            self._context.client_credentials[pattern] = self._security
        elif self.config.security == "dtls-psk" and credentials and credentials.psk:
            from aiocoap.credentials import DTLS

            self._context.client_credentials[pattern] = DTLS(credentials.psk.key, credentials.psk.identity)

    async def close(self) -> None:
        if self._context is not None:
            await self._context.shutdown()
            self._context = None
        lock = getattr(self._security, "lockfile", None)
        if lock is not None:
            lock.release()

    # -- the delivery loop ----------------------------------------------------------------

    async def run(self) -> None:
        while True:
            _raise_if_cancelling()
            try:
                batch = await self._next_batch()
                if batch is not None:
                    await self._deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. the buffer briefly unreadable
                log.exception("event=uplink_error upstream=%s", self.config.name)
                self.last_error = plain_error(exc)
                self.last_error_at = self.clock.time()
                await self.clock.sleep(self.backoff.next_delay())

    async def _next_batch(self) -> Batch | None:
        if self._inflight is not None:
            number, last = self._inflight
            readings = await self.store.read_after(self.cursor, max(last - self.cursor, 1))
            readings = [r for r in readings if r.seq <= last]
            buffered = [r.seq for r in readings]
            readings = self._select(readings)
            if not readings and self.config.format == "thingsboard":
                # The hard quota removed the whole unacknowledged range, and ThingsBoard
                # telemetry has neither batch numbers nor a way to announce it: move on.
                await self._acknowledged(Batch(number, [], last, self.cursor))
                return None
            if not readings and dropped_in_range(self.cursor, last, buffered) is None:
                # Nothing of the range is for this upstream any more (include/exclude changed
                # across a restart): pass it by and keep the number for the next batch.
                await self._pass_by(last, save=True)
                await self.store.put_state(self.namespace, {"inflight": {"batch": number - 1, "last": last}})
                self._inflight = None
                self.next_number = number
                return None
            # The same number and range as before, with whatever the hard quota left of it
            # (possibly nothing) and the rest announced: numbers stay contiguous.
            self.oldest_pending_ts = readings[0].ts if readings else None
            return Batch(number, readings, last, self.cursor, buffered)
        readings, buffered, last = await self._gather()
        batch = Batch(self.next_number, readings, last, self.cursor, buffered)
        # Persist before sending: if we die before the ack, the same readings go again under
        # the same number, and the receiver can tell the copy from new data.
        await self.store.put_state(
            self.namespace, {"inflight": {"batch": batch.number, "last": batch.last_seq}}
        )
        self._inflight = (batch.number, batch.last_seq)
        return batch

    async def _gather(self) -> tuple[list[StoredReading], list[int], int]:
        """Readings for the next batch: a full backlog batch at once while behind; when caught
        up, whatever arrives within ``linger`` of the first new reading, up to ``batch_size``.

        Returns the readings this upstream selects, the sequence numbers of every reading
        the range covers, and the range's last sequence number."""
        cfg = self.config
        select = self._select
        while True:
            raw = await self.store.read_after(self.cursor, cfg.backlog_batch_size)
            while not raw:
                self.state = "idle"
                self.oldest_pending_ts = None
                _raise_if_cancelling()
                # A cursor moved over left-out readings is saved within the interval even
                # when nothing else arrives.
                unsaved = self._cursor_saved != self.cursor
                await self.store.wait_committed(
                    max(self.cursor, self.store.last_seq), timeout=CURSOR_SAVE_INTERVAL if unsaved else None
                )
                if unsaved:
                    await self._pass_by(self.cursor)
                raw = await self.store.read_after(self.cursor, cfg.backlog_batch_size)
            readings = select(raw)
            if readings:
                break
            await self._pass_by(raw[-1].seq)  # none of it is for this upstream
        buffered = [r.seq for r in raw]
        last = raw[-1].seq
        self.oldest_pending_ts = readings[0].ts
        if len(readings) >= cfg.batch_size or cfg.linger <= 0:
            return readings, buffered, last
        self.state = "lingering"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.linger
        while len(readings) < cfg.batch_size and len(buffered) < cfg.backlog_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            _raise_if_cancelling()
            await self.store.wait_committed(last, timeout=remaining)
            more = await self.store.read_after(last, cfg.backlog_batch_size - len(buffered))
            if more:
                buffered += [r.seq for r in more]
                last = more[-1].seq
                readings += select(more)
        return readings, buffered, last

    async def _pass_by(self, seq: int, *, save: bool = False) -> None:
        """Move the cursor over readings this upstream does not take. Saved at most every
        few seconds (each save is a write to the SD card); until then retention holds them
        a little longer and a restart reads past them again."""
        self.cursor = seq
        now = time.monotonic()
        if save or now - self._cursor_saved_at >= CURSOR_SAVE_INTERVAL:
            await self.store.set_cursor(self.config.cursor_name, seq)
            self._cursor_saved_at = now
            self._cursor_saved = seq

    async def _deliver(self, batch: Batch) -> None:
        readings, last = batch.readings, batch.last_seq
        dropped = self._dropped(batch, last)
        while True:
            self.state = "sending"
            self.attempts += 1
            try:
                code, max_age, size = await self._attempt(batch.number, readings, dropped)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - network errors come in many types
                await self._wait_after_failure(
                    plain_error(exc), None, batch, detail=f"{type(exc).__name__}: {exc}".rstrip(": ")
                )
                continue
            decision = decide(code, max_age)
            if decision.action is Action.DELIVERED:
                self.bytes_sent += size
                self.readings_dropped_announced += dropped.count if dropped is not None else 0
                await self._acknowledged(Batch(batch.number, readings, last, batch.after))
                return
            if decision.action is Action.SHRINK and len(readings) > 1:
                # The upstream never accepted this number, so it may cover a shorter range.
                readings = readings[: len(readings) // 2]
                last = readings[-1].seq
                dropped = dropped_in_range(batch.after, last, batch.buffered_upto(last))
                dropped = dropped if self.config.format != "thingsboard" else None
                await self.store.put_state(
                    self.namespace, {"inflight": {"batch": batch.number, "last": last}}
                )
                self._inflight = (batch.number, last)
                log.warning(
                    "event=uplink_batch_too_large upstream=%s batch=%d readings=%d",
                    self.config.name,
                    batch.number,
                    len(readings),
                )
                continue
            await self._wait_after_failure(
                f"upstream answered {numbers.code_text(code)}", decision.server_delay, batch
            )

    def _dropped(self, batch: Batch, last: int) -> Dropped | None:
        """What the batch announces: readings of its range the hard quota removed."""
        dropped = dropped_in_range(batch.after, last, batch.buffered_upto(last))
        if dropped is None:
            return None
        announced = self.config.format != "thingsboard"  # telemetry has no place for it
        log.warning(
            "event=uplink_readings_dropped upstream=%s batch=%d dropped=%d first_seq=%d "
            "last_seq=%d reason=hard_quota announced=%s",
            self.config.name,
            batch.number,
            dropped.count,
            dropped.first,
            dropped.last,
            str(announced).lower(),
        )
        return dropped if announced else None

    async def _attempt(
        self, number: int, readings: list[StoredReading], dropped: Dropped | None
    ) -> tuple[int, int | None, int]:
        """Send the batch once: (response code, Max-Age, payload bytes). A profile that
        spreads a batch over several requests (ThingsBoard per device) overrides this."""
        payload, content_format = encode_batch(
            self.config.format,
            readings,
            BatchId(self.config.gateway_id, number),
            base_name=self.config.base_name,
            dropped=dropped,
            compact_floats=self.config.compact_floats,
        )
        code, max_age = await self._send(payload, content_format)
        return code, max_age, len(payload)

    async def _send(self, payload: bytes, content_format: int) -> tuple[int, int | None]:
        request = self._context.request(self._request_message(payload, content_format))
        async with asyncio.timeout(self.config.timeout):
            response = await request.response
        return int(response.code), response.opt.max_age

    def _request_message(self, payload: bytes, content_format: int) -> Any:
        from aiocoap import POST, PUT, Message, Reliable

        method = POST if self.config.method == "POST" else PUT
        # Reliable = confirmable: every request (and every Block1 block) is acknowledged.
        message = Message(
            code=method, transport_tuning=Reliable, uri=self.config.request_uri, payload=payload
        )
        if content_format:
            message.opt.content_format = content_format
        return message

    def _select(self, readings: list[StoredReading]) -> list[StoredReading]:
        """What this upstream takes of a run of readings: the points its include/exclude
        globs select, less those a device relays from another gateway (that gateway forwards
        its own). The cursor passes over the rest without spending a batch number."""
        selected = self.config.points.select(readings)
        if not self.relayed:
            return selected
        own = [r for r in selected if r.point.split("/", 1)[0] not in self.relayed]
        self.readings_skipped_relayed += len(selected) - len(own)
        return own

    async def _acknowledged(self, batch: Batch) -> None:
        await self.store.set_cursor(self.config.cursor_name, batch.last_seq)
        self.cursor = self._cursor_saved = batch.last_seq
        self._cursor_saved_at = time.monotonic()
        self._inflight = None
        self.oldest_pending_ts = None
        self.next_number = batch.number + 1
        self.backoff.reset()
        self.batches_sent += 1
        self.readings_sent += len(batch.readings)
        self.last_success = self.clock.time()
        self.retry_at = None
        self.failures_in_row = 0
        self.failing_since = None
        if self.last_error is not None and self.state in ("backoff", "sending"):
            log.info(
                "event=uplink_recovered upstream=%s batch=%d cursor=%d",
                self.config.name,
                batch.number,
                self.cursor,
            )
        self.state = "sent"
        log.debug(
            "event=uplink_batch_acked upstream=%s batch=%d readings=%d cursor=%d",
            self.config.name,
            batch.number,
            len(batch.readings),
            self.cursor,
        )

    async def _wait_after_failure(
        self, error: str, server_delay: float | None, batch: Batch, *, detail: str | None = None
    ) -> None:
        delay = min(server_delay, MAX_SERVER_DELAY) if server_delay is not None else self.backoff.next_delay()
        if error != self.last_error:
            log.warning(
                "event=uplink_failed upstream=%s batch=%d error=%r%s retry_in=%.1f",
                self.config.name,
                batch.number,
                error,
                f" detail={detail!r}" if detail else "",
                delay,
            )
        self.last_error = error
        self.last_error_at = self.clock.time()
        self.failures_in_row += 1
        if self.failing_since is None:
            self.failing_since = self.last_error_at
        self.state = "backoff"
        self.retry_at = self.clock.time() + delay
        await self.clock.sleep(delay)

    # -- health ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        now = self.clock.time()
        lag_readings = max(self.store.last_seq - self.cursor, 0)
        lag_seconds = 0.0
        if lag_readings and self.oldest_pending_ts is not None:
            lag_seconds = max(now - self.oldest_pending_ts, 0.0)
        return {
            "uri": self.config.safe_uri,
            "format": self.config.format,
            "security": self.config.security,
            "include": list(self.config.points.include),
            "exclude": list(self.config.points.exclude),
            "state": self.state,
            "cursor": self.cursor,
            "next_batch": self._inflight[0] if self._inflight else self.next_number,
            "lag_readings": lag_readings,
            "lag_seconds": round(lag_seconds, 3),
            "last_success": _iso(self.last_success),
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
            "last_success_ts": self.last_success,
            "last_error_ts": self.last_error_at,
            "failures_in_row": self.failures_in_row,
            "failing_since_ts": self.failing_since,
            "retry_in_s": round(max(self.retry_at - now, 0.0), 3) if self.retry_at else None,
            "batches_sent": self.batches_sent,
            "readings_sent": self.readings_sent,
            "bytes_sent": self.bytes_sent,
            "attempts": self.attempts,
            "readings_dropped_announced": self.readings_dropped_announced,
            "readings_skipped_relayed": self.readings_skipped_relayed,
        }


def relayed_devices(config: GatewayConfig) -> frozenset[str]:
    """Devices whose driver relays another gateway's readings (``Driver.relayed_from``)."""
    return frozenset(d.name for d in config.devices if d.driver_class.relayed_from(d.options) is not None)


def _raise_if_cancelling() -> None:
    """Python 3.11's asyncio.wait_for (used by Store.wait_committed) can swallow a
    cancellation that races with its own completion; the task then keeps running in
    "cancelling" state and shutdown would wait forever on our next idle wait."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def make_uplink(config: UpstreamConfig, ctx: ComponentContext, data_dir: Path) -> Uplink:
    """The delivery class for an upstream's profile (new profiles live in their own modules)."""
    if config.format == "hono":
        from .hono_uplink import HonoUplink

        return HonoUplink(config, ctx, data_dir)
    if (
        config.format == "thingsboard"
        and config.credentials
        and (config.credentials.device_tokens or config.commands or config.health_interval)
    ):
        from .thingsboard_uplink import ThingsBoardUplink

        return ThingsBoardUplink(config, ctx, data_dir)
    return Uplink(config, ctx, data_dir)


class UplinksComponent:
    """Every ``[[upstreams]]`` entry, each delivered independently by its own task."""

    name = "upstreams"

    def __init__(self, ctx: ComponentContext, config: UpstreamsConfig):
        self.ctx = ctx
        self.config = config
        self.uplinks = {u.name: make_uplink(u, ctx, config.data_dir) for u in config.upstreams}
        for uplink in self.uplinks.values():
            # Retention must keep what an upstream has not acknowledged yet.
            if uplink.config.cursor_name not in ctx.store.consumers:
                ctx.store.consumers.append(uplink.config.cursor_name)

    async def start(self) -> None:
        for uplink in self.uplinks.values():
            await uplink.open()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for name, uplink in self.uplinks.items():
                tg.create_task(uplink.run(), name=f"uplink:{name}")

    async def stop(self) -> None:
        for uplink in self.uplinks.values():
            try:
                await uplink.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("event=uplink_close_failed upstream=%s error=%r", uplink.config.name, str(exc))

    def health(self) -> dict[str, Any]:
        return {name: uplink.health() for name, uplink in self.uplinks.items()}
