"""The CoAP API component: binds the server, builds the resource tree, feeds Observe.

Started by the service from ``[api]`` with a ``ComponentContext``; resources live in ``api_resources``, keys in ``security``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

import aiocoap
from aiocoap import resource as coap_resource

from ..hub import Subscription
from ..model import is_valid_point_name
from .api_config import ApiConfig
from .api_resources import (
    ApiState,
    Discovery,
    HealthResource,
    OverrideResource,
    OverridesResource,
    PointResource,
    ReadingsResource,
    RulesResource,
)
from .security import OscoreOnDemand, Policy, SecurityError, ServerCredentials

if TYPE_CHECKING:
    from ..components import ComponentContext

log = logging.getLogger("gateway.coap.api")


class ApiError(Exception):
    """The API cannot start (port taken, OSCORE state locked, ...); the message says why."""


class ApiComponent:
    """The ``[api]`` component: owns the CoAP server (and its DTLS endpoint) that serves
    points, readings, health and rules to clients on the site network."""

    name = "api"

    def __init__(self, ctx: ComponentContext, config: ApiConfig):
        self.ctx = ctx
        self.config = config
        self.state = ApiState(ctx, config, Policy(config))
        self.site = coap_resource.Site()
        self.points_site = coap_resource.Site()
        self.overrides_site = coap_resource.Site()
        self.points: dict[str, PointResource] = {}
        self._contexts: list[aiocoap.Context] = []
        self._credentials: ServerCredentials | None = None
        self._subscription: Subscription | None = None
        self.listening: list[str] = []
        self._build_site()

    # -- resource tree ---------------------------------------------------------------------

    def _build_site(self) -> None:
        state = self.state
        self.site.add_resource(
            [".well-known", "core"], Discovery(state, self.site.get_resources_as_linkheader)
        )
        self.site.add_resource(["readings"], ReadingsResource(state))
        self.site.add_resource(["health"], HealthResource(state))
        self.site.add_resource(["rules"], RulesResource(state))
        self.site.add_resource(["overrides"], OverridesResource(state))
        self.site.add_resource(["points"], self.points_site)
        self.site.add_resource(["overrides"], self.overrides_site)
        for name, spec in self.ctx.config.points.items():
            self._add_point(name, spec.kind, spec.writable)

    def _add_point(self, name: str, kind: str = "number", writable: bool = False) -> PointResource:
        resource = PointResource(self.state, name, kind, writable)
        path = name.split("/")
        self.points_site.add_resource(path, resource)
        if writable:
            self.overrides_site.add_resource(path, OverrideResource(self.state, name, kind))
        self.points[name] = resource
        return resource

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        try:
            self._credentials = ServerCredentials(cfg, self.ctx.config.site.data_dir)
        except SecurityError as exc:
            raise ApiError(f"[api]: {exc}") from None
        credentials = self._credentials.map if cfg.clients else None
        site: Any = self.site
        if self._credentials.has_oscore:
            site = OscoreOnDemand(self.site, self._credentials)
        try:
            # aiocoap binds with SO_REUSEPORT, so a second gateway would silently share the
            # port; a plain bind first turns that into a clear error.
            ensure_port_free(cfg.bind, cfg.port)
            if cfg.dtls_port is not None:
                ensure_port_free(cfg.bind, cfg.dtls_port)
            self._contexts.append(
                await aiocoap.Context.create_server_context(
                    site,
                    (cfg.bind, cfg.port),
                    transports=["udp6"],
                    server_credentials=credentials,
                    loggername="gateway.coap.api.server",
                )
            )
            self.listening.append(_uri("coap", cfg.bind, cfg.port))
            if cfg.dtls_port is not None:
                # aiocoap's DTLS server binds to the given port plus one (5683 -> 5684).
                self._contexts.append(
                    await aiocoap.Context.create_server_context(
                        site,
                        (cfg.bind, cfg.dtls_port - 1),
                        transports=["tinydtls_server"],
                        server_credentials=credentials,
                        loggername="gateway.coap.api.dtls",
                    )
                )
                self.listening.append(_uri("coaps", cfg.bind, cfg.dtls_port))
        except OSError as exc:
            await self.stop()
            raise ApiError(
                f"[api]: cannot listen on {cfg.bind} port {cfg.port}"
                f"{'' if cfg.dtls_port is None else f' / DTLS {cfg.dtls_port}'}: "
                f"{exc.strerror or exc}"
            ) from None
        self._subscription = self.ctx.hub.subscribe(
            "api-observe", maxsize=cfg.observe_queue, overflow="drop_oldest"
        )
        log.info(
            "event=api_listening uris=%s oscore_clients=%d dtls_clients=%d public=%s",
            ",".join(self.listening),
            len(cfg.oscore_clients),
            len(cfg.psk_clients),
            ",".join(sorted(cfg.public)) or "none",
        )

    async def run(self) -> None:
        """Notify observers of every point that changed, batch by batch."""
        assert self._subscription is not None
        async for batch in self._subscription:
            changed: set[str] = set()
            for reading in batch:
                changed.add(reading.point)
            for point in changed:
                resource = self.points.get(point)
                if resource is None:
                    if not is_valid_point_name(point):
                        continue
                    resource = self._add_point(point)  # a point no config declared
                if resource.observers:
                    self.state.counters.notifications += resource.observers
                    resource.updated_state()

    async def stop(self) -> None:
        if self._subscription is not None:
            self.ctx.hub.unsubscribe(self._subscription)
            self._subscription = None
        contexts, self._contexts = self._contexts, []
        for context in reversed(contexts):
            try:
                await asyncio.wait_for(context.shutdown(), 3.0)
            except Exception as exc:  # noqa: BLE001 - shutting down; report and go on
                log.warning("event=api_shutdown_failed error=%r", str(exc))
        if self._credentials is not None:
            self._credentials.close()
            self._credentials = None
        self.listening = []

    def health(self) -> dict[str, Any]:
        c = self.state.counters
        return {
            "listening": list(self.listening),
            "public": sorted(self.config.public),
            "clients": {
                n: {
                    "access": cl.access,
                    "oscore": cl.credentials.oscore is not None,
                    "dtls": cl.credentials.psk is not None,
                }
                for n, cl in self.config.clients.items()
            },
            "requests": c.requests,
            "refused": c.refused,
            "writes": c.writes,
            "write_errors": c.write_errors,
            "pages": c.pages,
            "readings_served": c.readings_served,
            "observers": sum(p.observers for p in self.points.values()),
            "notifications": c.notifications,
            "bad_requests": dict(c.bad_requests),
        }


def ensure_port_free(host: str, port: int) -> None:
    """Raise OSError (EADDRINUSE) when some socket already holds ``host``:``port`` (UDP)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        probe.bind((host, port))


def port_is_free(host: str, port: int) -> bool:
    try:
        ensure_port_free(host, port)
    except OSError:
        return False
    return True


def _uri(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
