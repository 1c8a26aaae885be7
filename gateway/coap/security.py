"""Who is asking the CoAP API, and what they may do: OSCORE and DTLS-PSK server credentials.

Builds aiocoap's server ``CredentialsMap`` from the API clients; ``Policy`` decides per request;
``oscore_site`` wraps the resource tree in aiocoap's OSCORE layer.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api_config import ApiClient, ApiConfig
from .credentials import oscore_context

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


#: what aiocoap's OSCORE site wrapper (through aiocoap.edhoc) imports only to run EDHOC key
#: exchanges (/.well-known/edhoc); the API's clients have static OSCORE keys
EDHOC_MODULES = ("lakers",)


class DeferredModule(types.ModuleType):
    """Stands in sys.modules for a module not yet run; its first attribute use imports it.

    Code that imported the stand-in keeps it and reaches the real module through it."""

    def __getattr__(self, attr: str) -> Any:  # only for names the stand-in itself lacks
        real = sys.modules.get(self.__name__)
        if real is None or real is self:
            sys.modules.pop(self.__name__, None)
            real = importlib.import_module(self.__name__)
        return getattr(real, attr)


def defer_import(name: str) -> None:
    """Put a stand-in for ``name`` in sys.modules, so ``import name`` costs nothing until used.

    A module that is already imported, or cannot be found, is left alone (the real import
    then fails where it always did)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    stand_in = DeferredModule(name)
    stand_in.__spec__ = spec
    sys.modules[name] = stand_in
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, stand_in)


def oscore_site(site: Any, credentials: Any) -> Any:
    """``site`` behind aiocoap's ``OscoreSiteWrapper``.

    The wrapper also answers EDHOC, and imports lakers (a Rust extension, about 0.8 MB) for
    that at its own import; lakers is loaded only when a peer starts an EDHOC exchange."""
    for name in EDHOC_MODULES:
        defer_import(name)
    from aiocoap.oscore_sitewrapper import OscoreSiteWrapper

    return OscoreSiteWrapper(site, credentials)


class ServerCredentials:
    """aiocoap server credentials for every API client, with OSCORE state under the data dir."""

    def __init__(self, config: ApiConfig, data_dir: Path):
        from aiocoap.credentials import DTLS, CredentialsMap

        self.map = CredentialsMap()
        self._oscore: list[Any] = []
        try:
            for client in config.oscore_clients:
                assert client.credentials.oscore is not None
                state_dir = data_dir / OSCORE_STATE_DIR / client.name
                try:
                    context = oscore_context(client.credentials.oscore, state_dir)
                except TimeoutError:
                    raise SecurityError(
                        f"OSCORE state {state_dir} is locked by another process;"
                        " is a second gateway running on this data dir?"
                    ) from None
                except (OSError, ValueError, KeyError) as exc:
                    raise SecurityError(
                        f"OSCORE state {state_dir} for client '{client.name}' cannot be used: {exc}"
                    ) from None
                context.authenticated_claims = [CLAIM_PREFIX + client.name]
                self._oscore.append(context)
                self.map[CLAIM_PREFIX + client.name] = context
            for client in config.psk_clients:
                psk = client.credentials.psk
                assert psk is not None
                key = CLAIM_PREFIX + client.name
                if key in self.map:
                    # One client may hold both kinds; DTLS is looked up by identity, not by key.
                    key = f"{key}{CLAIM_PREFIX}dtls"
                self.map[key] = DTLS(psk.key, psk.identity)
        except BaseException:
            self.close()
            raise

    @property
    def has_oscore(self) -> bool:
        return bool(self._oscore)

    def close(self) -> None:
        """Persist OSCORE sequence numbers and release the state locks."""
        for context in self._oscore:
            try:
                if context.lockfile is not None:
                    context._destroy()  # aiocoap's own persist-and-unlock step
            except Exception as exc:  # noqa: BLE001 - shutting down; report, keep going
                log.warning("event=oscore_state_save_failed dir=%s error=%r", context.basedir, str(exc))
        self._oscore.clear()
