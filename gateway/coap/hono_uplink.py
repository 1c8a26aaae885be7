"""The Eclipse Hono profile's I/O: each device's readings as SenML+CBOR telemetry (events as
events) published on its behalf, and a standing ``hono-ttd`` wait whose responses carry
commands, written through ``Actuation.write`` and answered. Wire formats: ``hono``.
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
from . import hono, numbers
from .commands import Command, Read, execute
from .senml import BatchId, Dropped, encode_senml_cbor
from .uplink import Uplink, _raise_if_cancelling
from .uplink_config import UpstreamConfig
from .uplink_policy import Action, Backoff, decide

log = logging.getLogger("gateway.coap.hono")

SEEN_COMMANDS = 256
RESPONSE_ATTEMPTS = 3


class HonoUplink(Uplink):
    """Publishes on behalf of the gateway's devices; waits for and answers their commands."""

    def __init__(self, config: UpstreamConfig, ctx: ComponentContext, data_dir: Path):
        super().__init__(config, ctx, data_dir)
        self.ctx = ctx
        self.base = config.uri.rstrip("/")
        self.tenant = config.tenant
        #: parts of the in-flight batch already acknowledged: (batch number, parts)
        self._done: tuple[int, set[tuple[str, str]]] = (0, set())
        self._seen: collections.deque[str] = collections.deque(maxlen=SEEN_COMMANDS)
        self.command_counts: collections.Counter[str] = collections.Counter()
        self.command_waits = 0
        self.waiting_for_commands = False

    async def _open_context(self) -> None:
        await super()._open_context()
        credentials = self.config.credentials
        if self.config.security == "dtls-psk" and credentials and credentials.psk:
            from aiocoap.credentials import DTLS

            # Identity auth-id@tenant; one DTLS session for every path of the adapter.
            self._context.client_credentials[f"{self.base}/*"] = DTLS(
                credentials.psk.key, credentials.psk.identity
            )

    # -- publishing -----------------------------------------------------------------------

    async def _attempt(
        self, number: int, readings: list[StoredReading], dropped: Dropped | None
    ) -> tuple[int, int | None, int]:
        gateway = self.config.gateway_id
        parts = hono.split_batch(readings, gateway)
        if not parts and dropped is not None:
            parts = [hono.Part("event", gateway, ())]  # only the drop announcement
        if self._done[0] != number:
            self._done = (number, set())
        done = self._done[1]
        size = 0
        for index, part in enumerate(parts):
            key = (part.endpoint, part.device)
            if key in done:
                continue
            payload = encode_senml_cbor(
                part.readings,
                base_name=self.config.base_name,
                batch=BatchId(gateway, number),
                dropped=dropped if index == 0 else None,
                compact_floats=self.config.compact_floats,
                half_floats=self.config.compact_floats,
            )
            response = await self._request(
                "PUT", part.path(self.tenant), payload, numbers.CONTENT_FORMAT_SENML_CBOR
            )
            code = int(response.code)
            if numbers.code_class(code) != 2:
                return code, response.opt.max_age, size
            done.add(key)
            size += len(payload)
        return numbers.raw_code(numbers.CODE_CHANGED), None, size

    async def _request(
        self,
        method: str,
        path: list[str],
        payload: bytes,
        content_format: int | None,
        query: list[str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        from aiocoap import POST, PUT, Message, Reliable

        message = Message(
            code=PUT if method == "PUT" else POST, transport_tuning=Reliable, uri=self.base, payload=payload
        )
        message.opt.uri_path = tuple(path)
        if query:
            message.opt.uri_query = tuple(query)
        if content_format is not None:
            message.opt.content_format = content_format
        request = self._context.request(message)
        async with asyncio.timeout(timeout or self.config.timeout):
            return await request.response

    # -- commands -------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(super().run(), name=f"uplink:{self.config.name}")
            if self.config.commands:
                tg.create_task(self._command_loop(), name=f"uplink:{self.config.name}:commands")

    async def _command_loop(self) -> None:
        """One standing ``POST /event?hono-ttd=N&empty`` at a time: the adapter answers when
        a command for any of the gateway's devices comes, or when the time runs out."""
        ttd = self.config.command_ttd
        backoff = Backoff(self.config.retry_min, self.config.retry_max)
        while True:
            _raise_if_cancelling()
            delay: float | None = 0.0
            try:
                self.waiting_for_commands = True
                self.command_waits += 1
                response = await self._request(
                    "POST",
                    ["event"],
                    b"",
                    None,
                    query=hono.command_wait_query(ttd),
                    timeout=ttd + self.config.timeout,
                )
                self.waiting_for_commands = False
                decision = decide(int(response.code), response.opt.max_age)
                if decision.action is Action.DELIVERED:
                    backoff.reset()
                    await self._command(response)
                else:
                    delay = decision.server_delay
                    if delay is None:
                        delay = backoff.next_delay()
                    log.warning(
                        "event=hono_command_wait_refused upstream=%s code=%s retry_in=%.1f",
                        self.config.name,
                        numbers.code_text(int(response.code)),
                        delay,
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - network errors come in many types
                delay = backoff.next_delay()
                log.warning(
                    "event=hono_command_wait_failed upstream=%s error=%r retry_in=%.1f",
                    self.config.name,
                    plain_error(exc),
                    delay,
                )
            finally:
                self.waiting_for_commands = False
            if delay:
                await self.clock.sleep(min(delay, 3600.0))

    async def _command(self, response: Any) -> None:
        try:
            command = hono.parse_command(
                response.opt.location_path,
                response.opt.location_query,
                response.payload,
                response.opt.content_format,
                tenant=self.tenant,
                gateway_device=self.config.gateway_id,
            )
        except hono.CommandError as exc:
            log.warning("event=hono_bad_command upstream=%s error=%r", self.config.name, str(exc))
            return
        if command is None:
            return
        if command.request_id is not None:
            if command.request_id in self._seen:
                return
            self._seen.append(command.request_id)
        action = hono.command_action(command, self.config.name)
        if isinstance(action, Command):
            result = await execute(self.ctx.actuation, self.ctx.config.points, action)
            self.command_counts[result.status] += 1
            status, body = hono.command_response(result)
        elif isinstance(action, Read):
            latest = self.ctx.hub.latest.get(action.point)
            self.command_counts["read"] += 1
            status, body = hono.read_response(
                action.point, latest.value if latest else None, latest.ts if latest else None
            )
        else:
            self.command_counts[action.status] += 1
            status, body = hono.command_response(action)
        log.info(
            "event=hono_command upstream=%s device=%s name=%s request_id=%s status=%d reply=%s",
            self.config.name,
            command.device,
            command.name,
            command.request_id,
            status,
            body.decode(),
        )
        if command.request_id is not None:
            await self._respond(command, status, body)

    async def _respond(self, command: hono.HonoCommand, status: int, body: bytes) -> None:
        backoff = Backoff(self.config.retry_min, self.config.retry_max)
        error = ""
        for attempt in range(RESPONSE_ATTEMPTS):
            try:
                response = await self._request(
                    "PUT",
                    hono.response_path(command),
                    body,
                    numbers.CONTENT_FORMAT_JSON,
                    query=hono.response_query(status),
                )
                if response.code.is_successful():
                    return
                error = f"the adapter answered {response.code}"
                if int(response.code) == numbers.raw_code(numbers.CODE_SERVICE_UNAVAILABLE):
                    break  # nobody waits for this response any more
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                error = plain_error(exc)
            if attempt + 1 < RESPONSE_ATTEMPTS:
                await self.clock.sleep(backoff.next_delay())
        log.warning(
            "event=hono_command_response_failed upstream=%s request_id=%s error=%r",
            self.config.name,
            command.request_id,
            error,
        )

    def health(self) -> dict[str, Any]:
        out = super().health()
        out["tenant"] = self.tenant
        out["waiting_for_commands"] = self.waiting_for_commands
        out["command_waits"] = self.command_waits
        out["commands"] = dict(self.command_counts)
        return out
