"""The CoAP API's resources: readings pages, observable points, health, control, rules.

Thin aiocoap adapters: access checks through ``Policy``, payloads through ``api_codec``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import aiocoap
from aiocoap import error
from aiocoap import resource as coap_resource
from aiocoap.blockwise import Block1Spool, IncompleteException
from aiocoap.numbers.codes import Code

from ..driver import WriteError
from ..model import Quality, Reading, StoredReading
from . import api_codec as codec
from .api_config import ApiConfig
from .security import Decision, Policy

if TYPE_CHECKING:
    from ..components import ComponentContext
    from ..overrides import Override

log = logging.getLogger("gateway.coap.api")

POINT_RT = "gateway.point"


@dataclass
class ApiCounters:
    """The API's request, write, page and notification counts for its health."""

    requests: int = 0
    refused: int = 0
    writes: int = 0
    write_errors: int = 0
    pages: int = 0
    readings_served: int = 0
    notifications: int = 0
    #: requests answered 4.xx because of what the client sent, by reason (query, payload, ...)
    bad_requests: Counter[str] = field(default_factory=Counter)


@dataclass
class ApiState:
    """What every resource shares: the component context, the config, the policy and the counters."""

    ctx: ComponentContext
    config: ApiConfig
    policy: Policy
    counters: ApiCounters = field(default_factory=ApiCounters)


def _claims(request: aiocoap.Message) -> list[Any]:
    try:
        return list(request.remote.authenticated_claims or ())
    except AttributeError:
        return []


def _enforce(state: ApiState, decision: Decision, request: aiocoap.Message) -> None:
    state.counters.requests += 1
    if decision.allowed:
        return
    state.counters.refused += 1
    log.info(
        "event=api_refused code=%s method=%s path=/%s remote=%s",
        decision.code,
        request.code,
        "/".join(request.opt.uri_path),
        request.remote.hostinfo,
    )
    if decision.code == "forbidden":
        raise error.Forbidden(decision.reason)
    raise error.Unauthorized(decision.reason)


def _reject(
    state: ApiState,
    request: aiocoap.Message,
    reason: str,
    exc: Exception,
    kind: type[error.RenderableError] = error.BadRequest,
) -> NoReturn:
    """Answer 4.xx for what the client sent: counted by reason, one log line, no traceback."""
    state.counters.bad_requests[reason] += 1
    log.info(
        "event=api_bad_request reason=%s method=%s remote=%s error=%r",
        reason,
        request.code,
        _remote(request),
        str(exc)[:200],
    )
    raise kind(str(exc)[:200]) from None


def _remote(request: aiocoap.Message) -> str:
    try:
        return str(request.remote.hostinfo)
    except (AttributeError, ValueError):
        return "?"


def _negotiate(state: ApiState, request: aiocoap.Message, offered: tuple[int, ...]) -> int:
    try:
        return codec.negotiate(request.opt.accept, offered)
    except codec.NotAcceptable as exc:
        _reject(state, request, "accept", exc, error.NotAcceptable)


def _body(state: ApiState, request: aiocoap.Message) -> Any:
    try:
        return codec.decode_body(request.payload, request.opt.content_format)
    except codec.UnsupportedFormat as exc:
        _reject(state, request, "content_format", exc, error.UnsupportedContentFormat)
    except codec.RequestError as exc:
        _reject(state, request, "payload", exc)


class _CountingBlock1Spool(Block1Spool):
    """aiocoap's Block1 reassembly, with a gap or overlap answered 4.08 instead of 5.00.

    aiocoap raises a bare ValueError for a block that does not continue the ones before it,
    which it would answer 5.00 Internal Server Error with a traceback in the log.
    """

    def __init__(self, state: ApiState):
        super().__init__()
        self.state = state

    def feed_and_take(self, req: aiocoap.Message) -> aiocoap.Message:
        try:
            return super().feed_and_take(req)
        except IncompleteException:
            self.state.counters.bad_requests["block1"] += 1
            raise
        except ValueError as exc:
            # error.BadRequest (a block of the wrong size) is a RenderableError, not a ValueError.
            self.state.counters.bad_requests["block1"] += 1
            log.info(
                "event=api_bad_request reason=block1 method=%s remote=%s error=%r",
                req.code,
                _remote(req),
                str(exc) or "block does not continue the blocks before it",
            )
            raise IncompleteException from None


def _content(payload: bytes, content_format: int, **options: Any) -> aiocoap.Message:
    return aiocoap.Message(code=Code.CONTENT, payload=payload, content_format=content_format, **options)


class _ApiResource(coap_resource.Resource):
    group = ""
    ct: str = ""

    def __init__(self, state: ApiState):
        super().__init__()
        self.state = state
        self._block1 = _CountingBlock1Spool(state)

    def check_read(self, request: aiocoap.Message) -> None:
        _enforce(self.state, self.state.policy.may_read(self.group, _claims(request)), request)

    def check_write(self, request: aiocoap.Message) -> None:
        _enforce(self.state, self.state.policy.may_write(self.group, _claims(request)), request)


class Discovery(coap_resource.WKCResource):
    """``/.well-known/core``, subject to the "discovery" group of the public policy."""

    def __init__(self, state: ApiState, listgenerator: Callable[[], Any]):
        super().__init__(listgenerator, impl_info=None)
        self.state = state

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        _enforce(self.state, self.state.policy.may_read("discovery", _claims(request)), request)
        return await super().render_get(request)


class ReadingsResource(_ApiResource):
    """``/readings?after=SEQ&limit=N[&point=..]``: a page of buffered readings after a cursor."""

    group = "readings"
    ct = " ".join(map(str, codec.READINGS_FORMATS))
    rt = "gateway.readings"

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.check_read(request)
        content_format = _negotiate(self.state, request, codec.READINGS_FORMATS)
        cfg = self.state.config
        try:
            query = codec.parse_readings_query(request.opt.uri_query, cfg.page_size, cfg.max_page_size)
        except codec.RequestError as exc:
            _reject(self.state, request, "query", exc)
        readings = await self.state.ctx.store.read_after(query.after, query.limit, query.points)
        self.state.counters.pages += 1
        self.state.counters.readings_served += len(readings)
        # Max-Age 0: the page after the newest reading changes as soon as a reading arrives.
        return _content(codec.encode_page(readings, query, content_format), content_format, max_age=0)


class PointResource(_ApiResource, coap_resource.ObservableResource):
    """``/points/<device>/<point>``: the latest value (observable); PUT writes a writable point."""

    group = "points"
    ct = " ".join(map(str, codec.POINT_FORMATS))
    rt = POINT_RT

    def __init__(self, state: ApiState, point: str, kind: str, writable: bool):
        super().__init__(state)
        self.point = point
        self.kind = kind
        self.writable = writable
        if writable:
            self.if_ = "core.a"

    @property
    def observers(self) -> int:
        return len(self._observations)

    async def latest(self) -> StoredReading | None:
        reading = self.state.ctx.hub.latest.get(self.point)
        if reading is not None:
            return _as_stored(reading)
        stored = await self.state.ctx.store.latest([self.point])
        return stored[0] if stored else None

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.check_read(request)
        content_format = _negotiate(self.state, request, codec.POINT_FORMATS)
        # A declared point without a reading yet still answers (an empty pack), so an
        # observer subscribed at start-up stays subscribed and gets the first value.
        reading = await self.latest()
        return _content(codec.encode_point(reading, content_format), content_format)

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        self.check_write(request)
        if not self.writable:
            raise error.MethodNotAllowed(f"{self.point} is not writable")
        try:
            value = codec.value_for_point(_body(self.state, request), self.kind, self.point)
        except codec.RequestError as exc:
            _reject(self.state, request, "value", exc)
        try:
            await self.state.ctx.actuation.write(self.point, value, source="api")
        except WriteError as exc:
            self.state.counters.write_errors += 1
            raise error.ServiceUnavailable(str(exc)) from None
        self.state.counters.writes += 1
        return aiocoap.Message(code=Code.CHANGED)

    render_post = render_put


def _as_stored(r: Reading) -> StoredReading:
    # The hub's latest reading may not be committed yet, so it has no sequence number.
    return StoredReading(0, r.point, r.value, r.ts, r.unit, Quality(r.quality), r.clock_synced)


class HealthResource(_ApiResource):
    """``/health``: the gateway's whole health document."""

    group = "health"
    ct = " ".join(map(str, codec.DOCUMENT_FORMATS))
    rt = "gateway.health"

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.check_read(request)
        content_format = _negotiate(self.state, request, codec.DOCUMENT_FORMATS)
        return _content(
            codec.encode_document(self.state.ctx.health(), content_format), content_format, max_age=0
        )


class RulesResource(_ApiResource):
    """``/rules``: the rules component's state, or that rules are not configured."""

    group = "rules"
    ct = " ".join(map(str, codec.DOCUMENT_FORMATS))
    rt = "gateway.rules"

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.check_read(request)
        content_format = _negotiate(self.state, request, codec.DOCUMENT_FORMATS)
        rules = self.state.ctx.components.get("rules")
        document = (
            {"configured": True, **rules.health()}
            if rules is not None
            else {"configured": False, "message": "rules are not configured on this gateway"}
        )
        return _content(codec.encode_document(document, content_format), content_format, max_age=0)


class OverridesResource(_ApiResource):
    """``/overrides``: every active override (value, until, source)."""

    group = "overrides"
    ct = " ".join(map(str, codec.DOCUMENT_FORMATS))
    rt = "gateway.overrides"

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.check_read(request)
        content_format = _negotiate(self.state, request, codec.DOCUMENT_FORMATS)
        document = [_override_document(o) for o in self.state.ctx.overrides.all()]
        return _content(codec.encode_document(document, content_format), content_format, max_age=0)


class OverrideResource(_ApiResource):
    """``/overrides/<device>/<point>``: GET it, PUT ``{"value", "duration"}``, DELETE to clear."""

    group = "overrides"
    ct = " ".join(map(str, codec.DOCUMENT_FORMATS))
    rt = "gateway.override"
    if_ = "core.p"

    def __init__(self, state: ApiState, point: str, kind: str):
        super().__init__(state)
        self.point = point
        self.kind = kind

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.check_read(request)
        content_format = _negotiate(self.state, request, codec.DOCUMENT_FORMATS)
        override = self.state.ctx.overrides.active(self.point)
        if override is None:
            raise error.NotFound(f"{self.point}: no override active")
        return _content(
            codec.encode_document(_override_document(override), content_format), content_format, max_age=0
        )

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        self.check_write(request)
        try:
            value, duration = codec.override_from_body(_body(self.state, request), self.kind, self.point)
        except codec.RequestError as exc:
            _reject(self.state, request, "value", exc)
        override = await self.state.ctx.overrides.set(self.point, value, duration, source="api")
        self.state.counters.writes += 1
        log.info(
            "event=override_set point=%s value=%r until=%.0f source=api", self.point, value, override.until
        )
        try:
            # Apply the held value now; the override keeps rules from changing it meanwhile.
            await self.state.ctx.actuation.write(self.point, value, source="api")
        except WriteError as exc:
            log.warning("event=override_write_failed point=%s error=%r", self.point, str(exc))
        return aiocoap.Message(code=Code.CHANGED)

    render_post = render_put

    async def render_delete(self, request: aiocoap.Message) -> aiocoap.Message:
        self.check_write(request)
        existed = await self.state.ctx.overrides.clear(self.point)
        self.state.counters.writes += 1
        log.info("event=override_cleared point=%s existed=%s source=api", self.point, existed)
        return aiocoap.Message(code=Code.DELETED)


def _override_document(o: Override) -> dict[str, Any]:
    return {"point": o.point, "value": o.value, "until": o.until, "source": o.source, "set_at": o.set_at}
