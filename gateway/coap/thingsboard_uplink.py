"""The ThingsBoard profile's I/O: each device's telemetry under its own access token, the
gateway's health as a device of its own, and RPC / shared-attribute Observe subscriptions
whose commands become writes through ``Actuation.write``. Wire formats: ``thingsboard``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from pathlib import Path
from typing import Any

from ..components import ComponentContext
from ..model import StoredReading
from ..plain import plain_error
from . import numbers
from . import thingsboard as tb
from .commands import Command, CommandResult, Read, execute
from .senml import Dropped
from .uplink import Uplink, _raise_if_cancelling
from .uplink_config import UpstreamConfig
from .uplink_policy import Backoff

log = logging.getLogger("gateway.coap.thingsboard")

#: an Observe subscription is made afresh this often, so one the platform forgot (it
#: restarted) is not waited on forever
OBSERVE_REFRESH = 300.0
#: RPC ids remembered per device, so a notification seen twice is executed once
SEEN_RPC_IDS = 256
#: queued notifications per subscription; past this the oldest is dropped (and logged)
NOTIFICATION_QUEUE = 64
REPLY_ATTEMPTS = 3


class ThingsBoardUplink(Uplink):
    """Telemetry per device token; commands from RPC and shared attributes."""

    def __init__(self, config: UpstreamConfig, ctx: ComponentContext, data_dir: Path):
        super().__init__(config, ctx, data_dir)
        self.ctx = ctx
        entry = config.credentials
        assert entry is not None and entry.token is not None
        self.gateway_token: str = entry.token
        self.device_tokens: dict[str, str] = dict(entry.device_tokens)
        self.base = config.uri.rstrip("/")
        #: devices whose share of the in-flight batch is acknowledged: (batch number, devices)
        self._done: tuple[int, set[str | None]] = (0, set())
        self._seen_rpc: dict[str, collections.deque[int]] = {}
        self.subscriptions: dict[str, bool] = {}
        self.command_counts: collections.Counter[str] = collections.Counter()
        self.health_sent = 0

    # -- telemetry ------------------------------------------------------------------------

    async def _attempt(
        self, number: int, readings: list[StoredReading], dropped: Dropped | None
    ) -> tuple[int, int | None, int]:
        payloads = tb.telemetry_by_device(readings, self.device_tokens)
        if self._done[0] != number:
            self._done = (number, set())
        done = self._done[1]
        size = 0
        for device, payload in payloads.items():
            if device in done:
                continue  # acknowledged on an earlier attempt of this batch
            token = self.gateway_token if device is None else self.device_tokens[device]
            code, max_age = await self._post(tb.telemetry_path(token), payload)
            if numbers.code_class(code) != 2:
                return code, max_age, size
            done.add(device)
            size += len(payload)
        return numbers.raw_code(numbers.CODE_CHANGED), None, size

    async def _post(self, path: list[str], payload: bytes) -> tuple[int, int | None]:
        from aiocoap import POST, Message, Reliable

        message = Message(code=POST, transport_tuning=Reliable, uri=self.base, payload=payload)
        message.opt.uri_path = tuple(path)
        message.opt.content_format = numbers.CONTENT_FORMAT_JSON
        request = self._context.request(message)
        async with asyncio.timeout(self.config.timeout):
            response = await request.response
        return int(response.code), response.opt.max_age

    # -- tasks ----------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(super().run(), name=f"uplink:{self.config.name}")
            if self.config.health_interval > 0:
                tg.create_task(self._health_loop(), name=f"uplink:{self.config.name}:health")
            if self.config.commands:
                writable = self._writable_devices()
                for device, token in self.device_tokens.items():
                    if device not in writable:
                        continue
                    for kind in ("rpc", "attributes"):
                        tg.create_task(
                            self._subscribe(device, token, kind),
                            name=f"uplink:{self.config.name}:{device}:{kind}",
                        )

    def _writable_devices(self) -> set[str]:
        return {name.split("/", 1)[0] for name, spec in self.ctx.config.points.items() if spec.writable}

    async def _health_loop(self) -> None:
        while True:
            _raise_if_cancelling()
            if self.state != "backoff":  # a platform pushing back gets no extra requests
                try:
                    payload = tb.health_telemetry(self.ctx.health(), self.clock.time())
                    code, _ = await self._post(tb.telemetry_path(self.gateway_token), payload)
                    if numbers.code_class(code) == 2:
                        self.health_sent += 1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - best effort, next interval tries again
                    log.debug("event=tb_health_failed upstream=%s error=%r", self.config.name, str(exc))
            await self.clock.sleep(self.config.health_interval)

    # -- commands -------------------------------------------------------------------------

    async def _subscribe(self, device: str, token: str, kind: str) -> None:
        """Observe ``/api/v1/<token>/<kind>``; every notification is a command. The first
        answer is the subscription's confirmation, not a command."""
        from aiocoap import GET, Message

        key = f"{device}:{kind}"
        backoff = Backoff(self.config.retry_min, self.config.retry_max)
        loop = asyncio.get_running_loop()
        while True:
            _raise_if_cancelling()
            self.subscriptions[key] = False
            request = None
            try:
                message = Message(code=GET, uri=self.base, observe=0)
                message.opt.uri_path = tuple(
                    tb.rpc_path(token) if kind == "rpc" else tb.attributes_path(token)
                )
                request = self._context.request(message)
                queue: asyncio.Queue[Any] = asyncio.Queue(NOTIFICATION_QUEUE)
                _pump(request.observation, queue, self.config.name, key)
                async with asyncio.timeout(self.config.timeout):
                    first = await request.response
                if not first.code.is_successful():
                    raise ConnectionError(f"the platform answered {first.code} to the {kind} subscription")
                self.subscriptions[key] = True
                backoff.reset()
                log.info(
                    "event=tb_subscribed upstream=%s device=%s resource=%s", self.config.name, device, kind
                )
                refresh_at = loop.time() + OBSERVE_REFRESH
                while True:
                    try:
                        async with asyncio.timeout(max(refresh_at - loop.time(), 0)):
                            item = await queue.get()
                    except TimeoutError:
                        break  # subscribe afresh
                    if isinstance(item, BaseException):
                        raise ConnectionError(plain_error(item))  # the subscription ended
                    await self._notification(device, token, kind, item.payload)
                delay = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - network errors come in many types
                delay = backoff.next_delay()
                log.warning(
                    "event=tb_subscription_lost upstream=%s device=%s resource=%s error=%r retry_in=%.1f",
                    self.config.name,
                    device,
                    kind,
                    plain_error(exc),
                    delay,
                )
            finally:
                self.subscriptions[key] = False
                if request is not None and not request.observation.cancelled:
                    request.observation.cancel()
            await self.clock.sleep(delay)

    async def _notification(self, device: str, token: str, kind: str, payload: bytes) -> None:
        platform = self.config.name
        points = self.ctx.config.points
        try:
            if kind == "attributes":
                writable = [n for n, s in points.items() if s.writable]
                commands, ignored = tb.attribute_commands(payload, device, platform, writable)
                if ignored:
                    log.info(
                        "event=tb_attributes_ignored upstream=%s device=%s keys=%s",
                        platform,
                        device,
                        ",".join(sorted(ignored)),
                    )
                for command in commands:
                    result = await self._execute(command)
                    log.info(
                        "event=tb_attribute_applied upstream=%s point=%s status=%s%s",
                        platform,
                        command.point,
                        result.status,
                        f" reason={result.message!r}" if result.message else "",
                    )
                return
            rpc = tb.parse_rpc(payload)
        except tb.MessageError as exc:
            log.warning(
                "event=tb_bad_notification upstream=%s device=%s resource=%s error=%r",
                platform,
                device,
                kind,
                str(exc),
            )
            return
        seen = self._seen_rpc.setdefault(device, collections.deque(maxlen=SEEN_RPC_IDS))
        if rpc.id in seen:
            return
        seen.append(rpc.id)
        action = tb.rpc_action(rpc, device, platform)
        if isinstance(action, Command):
            reply = tb.rpc_reply(await self._execute(action))
        elif isinstance(action, Read):
            latest = self.ctx.hub.latest.get(action.point)
            reply = tb.read_reply(
                action.point, latest.value if latest else None, latest.ts if latest else None
            )
        else:
            self.command_counts[action.status] += 1
            reply = tb.rpc_reply(action)
        log.info(
            "event=tb_rpc upstream=%s device=%s id=%d method=%s reply=%s",
            platform,
            device,
            rpc.id,
            rpc.method,
            reply.decode(),
        )
        await self._reply(token, rpc.id, reply)

    async def _execute(self, command: Command) -> CommandResult:
        result = await execute(self.ctx.actuation, self.ctx.config.points, command)
        self.command_counts[result.status] += 1
        return result

    async def _reply(self, token: str, request_id: int, reply: bytes) -> None:
        backoff = Backoff(self.config.retry_min, self.config.retry_max)
        for attempt in range(REPLY_ATTEMPTS):
            try:
                code, _ = await self._post(tb.rpc_reply_path(token, request_id), reply)
                if numbers.code_class(code) == 2:
                    return
                error = f"the platform answered {numbers.code_text(code)}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                error = plain_error(exc)
            if attempt + 1 < REPLY_ATTEMPTS:
                await self.clock.sleep(backoff.next_delay())
        log.warning(
            "event=tb_rpc_reply_failed upstream=%s id=%d error=%r", self.config.name, request_id, error
        )

    def health(self) -> dict[str, Any]:
        out = super().health()
        out["devices_with_tokens"] = len(self.device_tokens)
        out["subscriptions"] = dict(self.subscriptions)
        out["commands"] = dict(self.command_counts)
        out["health_sent"] = self.health_sent
        return out


def _pump(observation: Any, queue: asyncio.Queue[Any], upstream: str, key: str) -> None:
    """Every notification into ``queue`` as it arrives (aiocoap's ``async for`` keeps only
    the newest, and a command must not be lost while the previous one is being written)."""

    def push(item: Any) -> None:
        if queue.full():
            dropped = queue.get_nowait()
            log.warning(
                "event=tb_notification_dropped upstream=%s subscription=%s dropped=%r",
                upstream,
                key,
                getattr(dropped, "payload", dropped),
            )
        queue.put_nowait(item)

    observation.register_callback(push, _suppress_deprecation=True)
    observation.register_errback(push, _suppress_deprecation=True)
