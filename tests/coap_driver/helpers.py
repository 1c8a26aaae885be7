"""Test peers of the CoAP driver: a small aiocoap sensor server and libcoap's example server."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator

import aiocoap
import cbor2
from aiocoap import resource as coap_resource
from aiocoap.numbers.codes import Code

COAP_SERVER = shutil.which("coap-server-notls")
COAP_CLIENT = shutil.which("coap-client-notls")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SenmlSensor(coap_resource.ObservableResource):
    """An LwM2M-style temperature object answering SenML-CBOR with a base name and Max-Age."""

    def __init__(self, max_age: int):
        super().__init__()
        self.max_age = max_age
        self.value = 20.0
        self.time = 0.0
        self.garbage = False
        self.gets = 0

    def set(self, value: float, time: float) -> None:
        self.value, self.time = value, time
        self.updated_state()

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.gets += 1
        payload = (
            b"\xff\x13garbage"
            if self.garbage
            else cbor2.dumps([{-2: "/3303/0/", -3: self.time, 0: "5700", 2: self.value, 1: "Cel"}])
        )
        return aiocoap.Message(code=Code.CONTENT, payload=payload, content_format=112, max_age=self.max_age)


class JsonProbe(coap_resource.Resource):
    """A polled JSON resource that also takes writes (PUT {"set": {"level": v}})."""

    def __init__(self) -> None:
        super().__init__()
        self.document = {"probe": {"vwc": 31.5}, "set": {"level": 0}}
        self.puts: list[bytes] = []

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=Code.CONTENT, payload=cbor2.dumps(self.document), content_format=60)

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        self.puts.append(request.payload)
        body = cbor2.loads(request.payload)
        self.document["set"] = body["set"]
        return aiocoap.Message(code=Code.CHANGED)


@contextlib.asynccontextmanager
async def aiocoap_sensor(port: int, max_age: int = 60) -> AsyncIterator[tuple[SenmlSensor, JsonProbe]]:
    site = coap_resource.Site()
    sensor, probe = SenmlSensor(max_age), JsonProbe()
    site.add_resource(["3303", "0"], sensor)
    site.add_resource(["probe"], probe)
    ctx = await aiocoap.Context.create_server_context(site, ("127.0.0.1", port), transports=["udp6"])
    try:
        yield sensor, probe
    finally:
        await ctx.shutdown()


async def run_tool(*args: str, timeout: float = 20.0) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out
