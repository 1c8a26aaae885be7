"""The directory component: registers the CoAP API's resources with a CoRE Resource
Directory, refreshes before the lifetime ends, registers again when the directory forgot
(it restarted), removes the registration on stop. Protocol steps: ``rd``.

Requests go out from the API's own socket, so the directory's idea of the gateway's
address (the registration's base, RFC 9176 §4.3) is the API's address and port.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..components import ComponentContext
from ..plain import plain_error
from . import numbers, rd
from .api import ApiComponent
from .rd_config import DirectoryConfig
from .uplink_policy import Backoff

log = logging.getLogger("gateway.coap.rd")


class DirectoryError(Exception):
    """The directory registration cannot start; the message says why."""


class DirectoryComponent:
    """The ``[directory]`` component: owns the gateway's registration with a CoRE resource
    directory and keeps it refreshed."""

    name = "directory"

    def __init__(self, ctx: ComponentContext, config: DirectoryConfig):
        self.ctx = ctx
        self.config = config
        self.backoff = Backoff(config.retry_min, config.retry_max)
        self.location: str | None = None  # the registration resource, e.g. /reg/1
        self.registration_interface = config.registration_path
        self.state = "starting"
        self.registrations = 0
        self.refreshes = 0
        self.last_error: str | None = None
        self.registered_at: float | None = None
        self.link_bytes = 0

    def _api(self) -> ApiComponent:
        api = self.ctx.components.get("api")
        if not isinstance(api, ApiComponent) or not api._contexts:
            raise DirectoryError("[directory] registers the CoAP API's resources: add an [api] section")
        return api

    def _context(self) -> Any:
        return self._api()._contexts[0]

    async def start(self) -> None:
        self._context()  # fail at start, with the reason, when there is no API

    async def run(self) -> None:
        while True:
            try:
                if self.location is None:
                    await self._register()
                    delay = rd.refresh_delay(self.config.lifetime)
                else:
                    delay = await self._refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - network errors come in many types
                self.state = "retrying"
                error = plain_error(exc)
                delay = self.backoff.next_delay()
                if error != self.last_error:
                    log.warning(
                        "event=rd_failed uri=%s error=%r retry_in=%.1f", self.config.uri, error, delay
                    )
                self.last_error = error
            await asyncio.sleep(delay)

    async def _request(
        self,
        code: Any,
        path: str,
        query: list[str] | None = None,
        payload: bytes = b"",
        content_format: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        from aiocoap import Message, Reliable

        message = Message(code=code, transport_tuning=Reliable, uri=self.config.uri + path, payload=payload)
        if query:
            message.opt.uri_query = tuple(query)
        if content_format is not None:
            message.opt.content_format = content_format
        request = self._context().request(message)
        async with asyncio.timeout(timeout or self.config.timeout):
            return await request.response

    async def _discover(self) -> str:
        from aiocoap import GET

        response = await self._request(GET, "/.well-known/core", [rd.DISCOVERY_QUERY])
        if not response.code.is_successful():
            raise ConnectionError(f"the directory answered {response.code} to discovery")
        path = rd.registration_interface(response.payload.decode("utf-8", "replace"))
        if path is None:
            raise ConnectionError("the directory lists no registration interface (rt=core.rd)")
        return path

    async def _register(self) -> None:
        from aiocoap import POST

        if self.registration_interface is None:
            self.registration_interface = await self._discover()
        links = rd.link_set(str(self._api().site.get_resources_as_linkheader())).encode()
        cfg = self.config
        # aiocoap sends a link set above 1024 bytes as Block1 (RFC 7959).
        response = await self._request(
            POST,
            self.registration_interface,
            rd.registration_query(cfg.endpoint, cfg.lifetime, cfg.sector, cfg.base),
            links,
            rd.CONTENT_FORMAT_LINK_FORMAT,
        )
        code = int(response.code)
        if rd.outcome(code, refreshing=False) is not rd.Outcome.REGISTERED:
            if code == numbers.raw_code(numbers.CODE_NOT_FOUND) and cfg.registration_path is None:
                self.registration_interface = None  # ask again next time
            raise ConnectionError(f"the directory answered {numbers.code_text(code)} to the registration")
        location = "/" + "/".join(response.opt.location_path)
        if location == "/":
            raise ConnectionError("the directory's 2.01 has no Location-Path")
        self.location = location
        self.link_bytes = len(links)
        self._registered()
        self.registrations += 1
        log.info(
            "event=rd_registered uri=%s endpoint=%s location=%s lifetime=%d links_bytes=%d",
            cfg.uri,
            cfg.endpoint,
            location,
            cfg.lifetime,
            len(links),
        )

    async def _refresh(self) -> float:
        from aiocoap import POST

        assert self.location is not None
        response = await self._request(POST, self.location, [f"lt={self.config.lifetime}"])
        result = rd.outcome(int(response.code), refreshing=True)
        if result is rd.Outcome.LOST:
            log.warning(
                "event=rd_registration_lost uri=%s location=%s action=register_again",
                self.config.uri,
                self.location,
            )
            self.location = None
            if self.config.registration_path is None:
                self.registration_interface = None  # it may have moved, too
            return 0.0
        if result is rd.Outcome.RETRY:
            raise ConnectionError(
                f"the directory answered {numbers.code_text(int(response.code))} to a refresh"
            )
        self.refreshes += 1
        self._registered()
        return rd.refresh_delay(self.config.lifetime)

    def _registered(self) -> None:
        self.state = "registered"
        self.registered_at = time.time()
        self.backoff.reset()
        if self.last_error is not None:
            log.info("event=rd_recovered uri=%s", self.config.uri)
        self.last_error = None

    async def stop(self) -> None:
        """Remove the registration (best effort, briefly): a lookup stops finding us now,
        not when the lifetime runs out."""
        if self.location is None:
            return
        from aiocoap import DELETE

        try:
            await self._request(DELETE, self.location, timeout=1.0)
            log.info("event=rd_removed uri=%s location=%s", self.config.uri, self.location)
        except Exception as exc:  # noqa: BLE001
            log.warning("event=rd_remove_failed uri=%s error=%r", self.config.uri, plain_error(exc))
        self.location = None
        self.state = "stopped"

    def health(self) -> dict[str, Any]:
        return {
            "uri": self.config.uri,
            "endpoint": self.config.endpoint,
            "state": self.state,
            "location": self.location,
            "lifetime_s": self.config.lifetime,
            "registrations": self.registrations,
            "refreshes": self.refreshes,
            "last_error": self.last_error,
            "registered_at_ts": self.registered_at,
            "link_bytes": self.link_bytes,
        }
