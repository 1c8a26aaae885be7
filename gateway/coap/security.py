"""Who is asking the CoAP API, and what they may do: OSCORE and DTLS-PSK server credentials.

Builds aiocoap's server ``CredentialsMap`` from the API clients; ``Policy`` decides per request;
``OscoreOnDemand`` puts aiocoap's OSCORE layer before the resource tree when a request needs it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..lazyimport import defer_import
from .api_config import ApiClient, ApiConfig
from .credentials import (
    OscoreKeys,
    StateLock,
    import_oscore,
    lock_state_dir,
    oscore_context,
    read_sequence_file,
)

log = logging.getLogger("gateway.coap.api")

#: under the data dir: one directory per OSCORE client holding its sequence numbers
OSCORE_STATE_DIR = "api-oscore"
#: prefix aiocoap's credential map keys carry; the key names the client
CLAIM_PREFIX = ":"


class SecurityError(Exception):
    """The API's security set-up cannot start; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether the API lets a request in, and if not the CoAP error and the reason to log."""

    allowed: bool
    code: str = ""  # "unauthorized" (4.01) or "forbidden" (4.03) when refused
    reason: str = ""


class Policy:
    """Reads of public groups are open; other reads need any client; writes need "control"."""

    def __init__(self, config: ApiConfig):
        self._public = config.public
        self._clients = config.clients

    def client_of(self, claims: Iterable[Any]) -> ApiClient | None:
        for claim in claims or ():
            if isinstance(claim, str) and claim.startswith(CLAIM_PREFIX):
                name = claim[len(CLAIM_PREFIX) :].removesuffix(f"{CLAIM_PREFIX}dtls")
                client = self._clients.get(name)
                if client is not None:
                    return client
        return None

    def may_read(self, group: str, claims: Iterable[Any]) -> Decision:
        if group in self._public or self.client_of(claims) is not None:
            return Decision(True)
        return Decision(False, "unauthorized", f"{group}: credentials required (OSCORE or DTLS-PSK)")

    def may_write(self, group: str, claims: Iterable[Any]) -> Decision:
        client = self.client_of(claims)
        if client is None:
            return Decision(False, "unauthorized", f"{group}: writes need an authenticated client")
        if client.access != "control":
            return Decision(False, "forbidden", f"client '{client.name}' may read but not write")
        return Decision(True)


#: where aiocoap's OSCORE site wrapper answers EDHOC
EDHOC_PATH = (".well-known", "edhoc")
#: what aiocoap's OSCORE site wrapper (through aiocoap.edhoc) imports only to run EDHOC key
#: exchanges (/.well-known/edhoc); the API's clients have static OSCORE keys
EDHOC_MODULES = ("lakers",)


def oscore_site(site: Any, credentials: Any) -> Any:
    """``site`` behind aiocoap's ``OscoreSiteWrapper``.

    The wrapper also answers EDHOC, and imports lakers (a Rust extension, about 0.8 MB) for
    that at its own import; lakers is loaded only when a peer starts an EDHOC exchange."""
    for name in EDHOC_MODULES:
        defer_import(name)
    return import_oscore("aiocoap.oscore_sitewrapper").OscoreSiteWrapper(site, credentials)


@dataclass(slots=True)
class _PendingOscore:
    client: ApiClient
    keys: OscoreKeys
    state_dir: Path
    lock: StateLock


class ServerCredentials:
    """aiocoap server credentials for every API client, with OSCORE state under the data dir.

    The OSCORE state directories are locked and checked at start-up, but the OSCORE contexts
    (aiocoap.oscore with cryptography, about 10 MB) are built by ``oscore_map()``, which the
    API calls on the first request that needs them."""

    def __init__(self, config: ApiConfig, data_dir: Path):
        from aiocoap.credentials import DTLS, CredentialsMap

        self.map = CredentialsMap()
        self._pending: list[_PendingOscore] = []
        self._oscore: list[Any] = []
        try:
            for client in config.oscore_clients:
                assert client.credentials.oscore is not None
                state_dir = data_dir / OSCORE_STATE_DIR / client.name
                try:
                    lock = lock_state_dir(state_dir)
                except TimeoutError:
                    raise SecurityError(
                        f"OSCORE state {state_dir} is locked by another process;"
                        " is a second gateway running on this data dir?"
                    ) from None
                except OSError as exc:
                    raise SecurityError(
                        f"OSCORE state {state_dir} for client '{client.name}' cannot be used: {exc}"
                    ) from None
                self._pending.append(_PendingOscore(client, client.credentials.oscore, state_dir, lock))
                try:
                    read_sequence_file(state_dir)
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    raise SecurityError(
                        f"OSCORE state {state_dir} for client '{client.name}' cannot be used: {exc}"
                    ) from None
            for client in config.psk_clients:
                psk = client.credentials.psk
                assert psk is not None
                key = CLAIM_PREFIX + client.name
                if any(p.client.name == client.name for p in self._pending):
                    # One client may hold both kinds; DTLS is looked up by identity, not by key.
                    key = f"{key}{CLAIM_PREFIX}dtls"
                self.map[key] = DTLS(psk.key, psk.identity)
        except BaseException:
            self.close()
            raise

    @property
    def has_oscore(self) -> bool:
        return bool(self._pending or self._oscore)

    def oscore_map(self) -> Any:
        """The credentials map with every client's OSCORE context in it (built on first call)."""
        while self._pending:
            pending = self._pending[0]
            try:
                context = oscore_context(pending.keys, pending.state_dir, pending.lock)
            except Exception:
                log.exception("event=oscore_context_failed dir=%s", pending.state_dir)
                raise
            self._pending.pop(0)
            context.authenticated_claims = [CLAIM_PREFIX + pending.client.name]
            self._oscore.append(context)
            self.map[CLAIM_PREFIX + pending.client.name] = context
        log.info("event=api_oscore_ready clients=%d", len(self._oscore))
        return self.map

    def close(self) -> None:
        """Persist OSCORE sequence numbers and release the state locks."""
        for pending in self._pending:
            # never used: nothing to persist; unlink and unlock as aiocoap's context does
            with contextlib.suppress(OSError):
                os.unlink(pending.lock.lock_file)
            pending.lock.release()
        self._pending.clear()
        for context in self._oscore:
            try:
                if context.lockfile is not None:
                    context._destroy()  # aiocoap's own persist-and-unlock step
            except Exception as exc:  # noqa: BLE001 - shutting down; report, keep going
                log.warning("event=oscore_state_save_failed dir=%s error=%r", context.basedir, str(exc))
        self._oscore.clear()


class OscoreOnDemand:
    """The resource tree as the API's server site, with aiocoap's OSCORE layer put in front of
    it on the first OSCORE-protected (or EDHOC) request; until then plain requests go
    straight to the tree and aiocoap.oscore and cryptography stay unloaded."""

    def __init__(self, site: Any, credentials: ServerCredentials):
        self._site = site
        self._credentials = credentials
        self._wrapper: Any = None

    @property
    def oscore_loaded(self) -> bool:
        return self._wrapper is not None

    def get_resources_as_linkheader(self) -> Any:
        return self._site.get_resources_as_linkheader()

    async def render(self, request: Any) -> Any:
        raise RuntimeError("OscoreOnDemand is used through render_to_pipe only")

    async def needs_blockwise_assembly(self, request: Any) -> bool:
        raise RuntimeError("OscoreOnDemand is used through render_to_pipe only")

    async def render_to_pipe(self, pipe: Any) -> None:
        if self._wrapper is None:
            request = pipe.request
            if request.opt.oscore is None and tuple(request.opt.uri_path) != EDHOC_PATH:
                await self._site.render_to_pipe(pipe)
                return
            self._wrapper = oscore_site(self._site, self._credentials.oscore_map())
        await self._wrapper.render_to_pipe(pipe)
