"""An Eclipse Hono CoAP adapter stand-in, written from the adapter's user guide (Hono 2.x,
eclipse-hono/hono site/documentation/content/user-guide/coap-adapter.md), gateway side:

* ``PUT /telemetry/<tenant>/<device>`` and ``PUT /event/<tenant>/<device>``: 2.04 once
  accepted (payload passed through: SenML+CBOR is decoded here only to check it); 4.03 for
  another tenant; 4.00 for an empty body without ``empty``; queued refusals (4.29 / 5.03
  with Max-Age) first, as a busy tenant or a missing consumer would answer.
* ``POST /event?hono-ttd=N&empty``: the gateway waits for a command; answered 2.05 with
  ``location-query: hono-command=<name>`` and ``location-path:
  command_response/<tenant>/<device>/<id>`` (or ``command/<tenant>/<device>`` one-way) and
  the command's payload when an application sends one within N seconds, else 2.04 empty.
* ``PUT /command_response/<tenant>/<device>/<id>?hono-cmd-status=S``: 2.04; 4.00 without a
  status; 5.03 for an id nobody waits for.

Plain CoAP on loopback; the requests are taken as from the authenticated gateway (DTLS-PSK
with ``auth-id@tenant`` is the uplink's ordinary dtls-psk security, tested elsewhere).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.resource as resource

from gateway.coap.senml import decode_senml_cbor

from .receiver import free_udp_port


@dataclass
class Adapter:
    tenant: str
    #: (endpoint, device) -> decoded records (name, value, time), in arrival order
    published: dict[tuple[str, str], list[tuple[str, Any, float]]] = field(default_factory=dict)
    batches: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    content_formats: set[int | None] = field(default_factory=set)
    refusals: list[tuple[aiocoap.numbers.codes.Code, int | None]] = field(default_factory=list)
    refusal_times: list[float] = field(default_factory=list)
    accept_times: list[float] = field(default_factory=list)
    #: request id -> (hono-cmd-status, body)
    responses: dict[str, tuple[int, Any]] = field(default_factory=dict)
    waits: int = 0
    waiting: int = 0


class HonoAdapter(resource.Resource, resource.PathCapable):
    def __init__(self, adapter: Adapter):
        super().__init__()
        self.adapter = adapter
        self.commands: asyncio.Queue[tuple[str, str, str, bytes, bool]] = asyncio.Queue()
        self.pending: set[str] = set()
        self._ids = itertools.count(1)

    def send_command(self, device: str, name: str, body: Any, one_way: bool = False) -> str:
        request_id = f"req-{next(self._ids)}"
        if not one_way:
            self.pending.add(request_id)
        self.commands.put_nowait((device, name, request_id, json.dumps(body).encode(), one_way))
        return request_id

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        path = list(request.opt.uri_path)
        query = list(request.opt.uri_query)
        if request.code == aiocoap.PUT and len(path) == 3 and path[0] in ("telemetry", "event"):
            return self._publish(request, path, query)
        if request.code == aiocoap.POST and path in (["event"], ["telemetry"]):
            return await self._wait(request, query)
        if request.code == aiocoap.PUT and len(path) == 4 and path[0] == "command_response":
            return self._response(request, path, query)
        return aiocoap.Message(code=aiocoap.NOT_FOUND)

    def _publish(self, request: aiocoap.Message, path: list[str], query: list[str]) -> aiocoap.Message:
        loop = asyncio.get_running_loop()
        endpoint, tenant, device = path
        if tenant != self.adapter.tenant:
            return aiocoap.Message(code=aiocoap.FORBIDDEN, payload=b"gateway belongs to another tenant")
        if not request.payload and "empty" not in query:
            return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"empty body without URI-query empty")
        if self.adapter.refusals:
            code, max_age = self.adapter.refusals.pop(0)
            self.adapter.refusal_times.append(loop.time())
            answer = aiocoap.Message(code=code)
            if max_age is not None:
                answer.opt.max_age = max_age
            return answer
        self.adapter.content_formats.add(request.opt.content_format)
        pack = decode_senml_cbor(request.payload, time_digits=3)
        key = (endpoint, device)
        self.adapter.published.setdefault(key, []).extend((r.name, r.value, r.time) for r in pack.records)
        if pack.batch is not None:
            self.adapter.batches.setdefault(key, []).append(pack.batch.seq)
        self.adapter.accept_times.append(loop.time())
        return aiocoap.Message(code=aiocoap.CHANGED)

    async def _wait(self, request: aiocoap.Message, query: list[str]) -> aiocoap.Message:
        ttd = next((int(q.split("=", 1)[1]) for q in query if q.startswith("hono-ttd=")), None)
        if ttd is None:
            return aiocoap.Message(code=aiocoap.CHANGED)  # an ordinary empty event
        self.adapter.waits += 1
        self.adapter.waiting += 1
        try:
            device, name, request_id, body, one_way = await asyncio.wait_for(
                self.commands.get(), min(ttd, 60)
            )
        except TimeoutError:
            return aiocoap.Message(code=aiocoap.CHANGED)
        finally:
            self.adapter.waiting -= 1
        answer = aiocoap.Message(code=aiocoap.CONTENT, payload=body, content_format=50)
        answer.opt.location_query = (f"hono-command={name}",)
        answer.opt.location_path = (
            ("command", self.adapter.tenant, device)
            if one_way
            else ("command_response", self.adapter.tenant, device, request_id)
        )
        return answer

    def _response(self, request: aiocoap.Message, path: list[str], query: list[str]) -> aiocoap.Message:
        status = next((q.split("=", 1)[1] for q in query if q.startswith("hono-cmd-status=")), None)
        if status is None or not status.isdigit():
            return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"hono-cmd-status missing")
        request_id = path[3]
        if request_id not in self.pending:
            return aiocoap.Message(code=aiocoap.SERVICE_UNAVAILABLE, payload=b"nobody waits for it")
        self.pending.discard(request_id)
        self.adapter.responses[request_id] = (
            int(status),
            json.loads(request.payload) if request.payload else None,
        )
        return aiocoap.Message(code=aiocoap.CHANGED)


class Hono:
    def __init__(self, tenant: str = "DEFAULT_TENANT", port: int | None = None):
        self.port = port or free_udp_port()
        self.adapter = Adapter(tenant)
        self.root = HonoAdapter(self.adapter)
        self._context: aiocoap.Context | None = None

    @property
    def uri(self) -> str:
        return f"coap://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Hono:
        self._context = await aiocoap.Context.create_server_context(self.root, bind=("127.0.0.1", self.port))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._context is not None
        await asyncio.wait_for(self._context.shutdown(), 10)
