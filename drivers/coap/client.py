"""The thin aiocoap adapter of the CoAP driver: one client context per peer, with its OSCORE
or DTLS-PSK credentials; GET, PUT and Observe with timeouts, answers as plain values.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.coap.credentials import CredentialEntry, oscore_context
from gateway.coap.numbers import code_class, code_text

log = logging.getLogger("gateway.driver.coap")


class PeerError(Exception):
    """The peer did not answer usefully (no answer, refused, security failure); plain words."""


@dataclass(frozen=True, slots=True)
class Answer:
    code: int  # raw 8-bit code, e.g. 0x45 (2.05)
    payload: bytes
    content_format: int | None
    max_age: int | None
    observed: bool = False  # carries an Observe option (the registration was taken)

    @property
    def ok(self) -> bool:
        return code_class(self.code) == 2

    def describe(self) -> str:
        text = self.payload[:120].decode("utf-8", "replace") if self.payload and not self.ok else ""
        return f"{code_text(self.code)}{f' {text!r}' if text else ''}"


class Observation:
    """A running registration: ``first`` is the answer to the GET, ``next()`` the notifications."""

    def __init__(self, request: Any, first: Answer):
        self._request = request
        self.first = first
        self._iterator = request.observation.__aiter__() if first.observed else None

    async def next(self, timeout: float) -> Answer | None:
        """The next notification, or None when ``timeout`` passed or the peer ended it."""
        if self._iterator is None:
            return None
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                message = await self._iterator.__anext__()
        except (TimeoutError, StopAsyncIteration):
            return None
        except Exception as exc:  # noqa: BLE001 - aiocoap ends observations with many error types
            log.debug("event=observation_ended error=%r", f"{type(exc).__name__}: {exc}")
            return None
        return _answer(message)

    def cancel(self) -> None:
        try:
            if not self._request.observation.cancelled:
                self._request.observation.cancel()
        except Exception as exc:  # noqa: BLE001 - cancelling a dead observation is harmless
            log.debug("event=observation_cancel_failed error=%r", str(exc))


class PeerClient:
    """Requests to one peer (``base_uri`` = scheme://host:port) with its security set up."""

    def __init__(self, base_uri: str, security: str, credentials: CredentialEntry | None, state_dir: Path):
        self.base_uri = base_uri
        self.security = security
        self.credentials = credentials
        self.state_dir = state_dir
        self._context: Any = None
        self._oscore: Any = None

    async def open(self) -> None:
        import aiocoap

        transports = {"dtls-psk": ["tinydtls"], "oscore": ["oscore", "udp6"]}.get(self.security, ["udp6"])
        self._context = await aiocoap.Context.create_client_context(transports=transports)
        pattern = f"{self.base_uri}/*"
        try:
            if self.security == "oscore" and self.credentials and self.credentials.oscore:
                self._oscore = oscore_context(self.credentials.oscore, self.state_dir)
                self._context.client_credentials[pattern] = self._oscore
            elif self.security == "dtls-psk" and self.credentials and self.credentials.psk:
                from aiocoap.credentials import DTLS

                self._context.client_credentials[pattern] = DTLS(
                    self.credentials.psk.key, self.credentials.psk.identity
                )
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        context, self._context = self._context, None
        if context is not None:
            try:
                await asyncio.wait_for(context.shutdown(), 3.0)
            except Exception as exc:  # noqa: BLE001 - shutting down; report and go on
                log.warning("event=coap_client_shutdown_failed peer=%s error=%r", self.base_uri, str(exc))
        security, self._oscore = self._oscore, None
        if security is not None and getattr(security, "lockfile", None) is not None:
            try:
                security._destroy()  # aiocoap's persist-sequence-number-and-unlock step
            except Exception as exc:  # noqa: BLE001
                log.warning("event=oscore_state_save_failed dir=%s error=%r", self.state_dir, str(exc))

    def _message(self, code: Any, path: str, **options: Any) -> Any:
        import aiocoap

        return aiocoap.Message(code=code, uri=self.base_uri + path, **options)

    async def get(self, path: str, accept: int | None, timeout: float) -> Answer:
        from aiocoap import GET

        options = {"accept": accept} if accept is not None else {}
        return await self._request(self._message(GET, path, **options), timeout, path)

    async def put(self, path: str, payload: bytes, content_format: int, timeout: float) -> Answer:
        from aiocoap import PUT

        return await self._request(
            self._message(PUT, path, payload=payload, content_format=content_format), timeout, path
        )

    async def observe(self, path: str, accept: int | None, timeout: float) -> Observation:
        from aiocoap import GET

        options = {"accept": accept} if accept is not None else {}
        request = self._require().request(self._message(GET, path, observe=0, **options))
        try:
            first = await self._await(request.response, timeout, path)
        except BaseException:
            try:
                request.observation.cancel()
            except Exception:  # noqa: BLE001
                pass
            raise
        return Observation(request, first)

    async def _request(self, message: Any, timeout: float, path: str) -> Answer:
        return await self._await(self._require().request(message).response, timeout, path)

    async def _await(self, response: Any, timeout: float, path: str) -> Answer:
        try:
            async with asyncio.timeout(timeout):
                message = await response
        except TimeoutError:
            raise PeerError(f"no answer from {self.base_uri}{path} within {timeout:g}s") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - network, OSCORE and DTLS errors come in many types
            raise PeerError(f"{self.base_uri}{path}: {_plain(exc)}") from None
        return _answer(message)

    def _require(self) -> Any:
        if self._context is None:
            raise PeerError(f"{self.base_uri}: client is not open")
        return self._context


def _answer(message: Any) -> Answer:
    return Answer(
        int(message.code),
        bytes(message.payload),
        message.opt.content_format,
        message.opt.max_age,
        message.opt.observe is not None,
    )


def _plain(exc: Exception) -> str:
    name = type(exc).__name__
    text = str(exc).strip()
    if isinstance(exc, ConnectionRefusedError) or "refused" in text.lower():
        return "connection refused (nothing listens on the port)"
    if (
        "oscore" in name.lower()
        or "oscore" in text.lower()
        or name in ("NotAProtectedMessage", "ProtectionInvalid")
    ):
        return f"OSCORE failed ({name}{': ' + text[:120] if text else ''}): check the keys in the credentials file"
    return f"{name}: {text[:200]}" if text else name
