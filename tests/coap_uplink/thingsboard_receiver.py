"""A ThingsBoard stand-in written from its CoAP device API reference (CE 4.x,
thingsboard.io/docs/reference/coap-api): per access token ``/api/v1/$TOKEN/telemetry``
(POST, answers 2.01), ``/api/v1/$TOKEN/rpc`` and ``/api/v1/$TOKEN/attributes`` (GET with
Observe: every notification is an RPC request or a shared-attribute update) and
``/api/v1/$TOKEN/rpc/{id}`` (POST: the device's RPC reply). An unknown token is 4.01.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.resource as resource

from .receiver import free_udp_port


@dataclass
class Platform:
    #: token -> every telemetry payload posted with it, decoded
    telemetry: dict[str, list[Any]] = field(default_factory=dict)
    #: (token, rpc id) -> the reply body
    replies: dict[tuple[str, int], Any] = field(default_factory=dict)
    #: answers to give to telemetry before accepting: (code, max_age or None)
    refusals: list[tuple[aiocoap.numbers.codes.Code, int | None]] = field(default_factory=list)
    refusal_times: list[float] = field(default_factory=list)
    accept_times: list[float] = field(default_factory=list)
    observers: dict[str, int] = field(default_factory=dict)


class Telemetry(resource.Resource):
    def __init__(self, platform: Platform, token: str):
        super().__init__()
        self.platform, self.token = platform, token

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        loop = asyncio.get_running_loop()
        if self.platform.refusals:
            code, max_age = self.platform.refusals.pop(0)
            self.platform.refusal_times.append(loop.time())
            answer = aiocoap.Message(code=code)
            if max_age is not None:
                answer.opt.max_age = max_age
            return answer
        if request.opt.content_format != 50:
            return aiocoap.Message(code=aiocoap.UNSUPPORTED_CONTENT_FORMAT)
        try:
            body = json.loads(request.payload)
        except ValueError:
            return aiocoap.Message(code=aiocoap.BAD_REQUEST)
        self.platform.telemetry.setdefault(self.token, []).append(body)
        self.platform.accept_times.append(loop.time())
        return aiocoap.Message(code=aiocoap.CREATED)


class Pushed(resource.ObservableResource):
    """``rpc`` or ``attributes``: the newest pushed message; empty before the first."""

    def __init__(self, platform: Platform, key: str):
        super().__init__()
        self.platform, self.key = platform, key
        self.current = b""

    def update_observation_count(self, count: int) -> None:
        self.platform.observers[self.key] = count

    def push(self, body: Any) -> None:
        self.current = json.dumps(body).encode()
        self.updated_state()

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(payload=self.current, content_format=50)


class Reply(resource.Resource):
    def __init__(self, platform: Platform, token: str, rpc_id: int):
        super().__init__()
        self.platform, self.token, self.rpc_id = platform, token, rpc_id

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.platform.replies[(self.token, self.rpc_id)] = json.loads(request.payload)
        return aiocoap.Message(code=aiocoap.CHANGED)


class Unauthorized(resource.Resource, resource.PathCapable):
    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.UNAUTHORIZED)


class ThingsBoard:
    """In-process, on 127.0.0.1:<free port>, knowing the given device tokens."""

    def __init__(self, tokens: list[str], port: int | None = None):
        self.port = port or free_udp_port()
        self.tokens = tokens
        self.platform = Platform()
        self.site = resource.Site()
        self.rpc: dict[str, Pushed] = {}
        self.attributes: dict[str, Pushed] = {}
        self._next_id = 0
        self._context: aiocoap.Context | None = None
        for token in tokens:
            base = ["api", "v1", token]
            self.site.add_resource(base + ["telemetry"], Telemetry(self.platform, token))
            self.rpc[token] = Pushed(self.platform, f"{token}:rpc")
            self.attributes[token] = Pushed(self.platform, f"{token}:attributes")
            self.site.add_resource(base + ["rpc"], self.rpc[token])
            self.site.add_resource(base + ["attributes"], self.attributes[token])

    @property
    def uri(self) -> str:
        return f"coap://127.0.0.1:{self.port}"

    def send_rpc(self, token: str, method: str, params: Any) -> int:
        """A server-side RPC (as from a dashboard widget): returns its id."""
        self._next_id += 1
        self.site.add_resource(
            ["api", "v1", token, "rpc", str(self._next_id)], Reply(self.platform, token, self._next_id)
        )
        self.rpc[token].push({"id": self._next_id, "method": method, "params": params})
        return self._next_id

    def update_shared_attributes(self, token: str, values: dict[str, Any]) -> None:
        self.attributes[token].push(values)

    def values(self, token: str) -> list[tuple[int, str, Any]]:
        """Every (ts, key, value) posted under ``token``."""
        return [
            (entry["ts"], key, value)
            for body in self.platform.telemetry.get(token, [])
            for entry in body
            for key, value in entry["values"].items()
        ]

    async def __aenter__(self) -> ThingsBoard:
        self._context = await aiocoap.Context.create_server_context(self.site, bind=("127.0.0.1", self.port))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._context is not None
        await asyncio.wait_for(self._context.shutdown(), 10)
