"""An upstream platform for the uplink tests: an aiocoap server that stores SenML batches.

Runs in-process (``Receiver``) or as its own process (``python -m tests.coap_uplink.receiver``)
so a test can kill it with SIGKILL mid-batch. It drops duplicates the documented way: per
gateway id, a batch whose number is not above the last accepted one is acknowledged, not kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import aiocoap
import aiocoap.resource as resource

from gateway.coap.senml import Dropped, decode_senml_cbor, decode_senml_json


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """Everything the receiver saw; ``accepted`` holds records of non-duplicate batches."""

    accepted: list[tuple[str, object, float]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)  # every batch number seen, in order
    duplicates: list[int] = field(default_factory=list)  # numbers dropped as duplicates
    payload_sizes: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)  # as received, for plain decoders
    block1_requests: int = 0
    last_batch: dict[str, int] = field(default_factory=dict)
    #: per accepted batch number: how many records it held, and its drop announcement if any
    sizes: dict[int, int] = field(default_factory=dict)
    dropped: dict[int, Dropped] = field(default_factory=dict)
    #: answers to give before accepting: list of (code, max_age or None)
    refusals: list[tuple[aiocoap.numbers.codes.Code, int | None]] = field(default_factory=list)
    refusal_times: list[float] = field(default_factory=list)
    protected: list[bool] = field(default_factory=list)  # per request: came in under OSCORE
    require_oscore: bool = False


class BatchResource(resource.Resource):
    def __init__(self, received: Received, out: Path | None = None, die_at_batch: int | None = None):
        super().__init__()
        self.received = received
        self.out = out
        self.die_at_batch = die_at_batch

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        loop = asyncio.get_running_loop()
        protected = type(request.remote).__name__ == "OSCOREAddress"
        self.received.protected.append(protected)
        if self.received.require_oscore and not protected:
            return aiocoap.Message(code=aiocoap.UNAUTHORIZED)
        if self.received.refusals:
            code, max_age = self.received.refusals.pop(0)
            self.received.refusal_times.append(loop.time())
            answer = aiocoap.Message(code=code)
            if max_age is not None:
                answer.opt.max_age = max_age
            return answer
        fmt = request.opt.content_format
        if fmt == 112:
            pack = decode_senml_cbor(request.payload, time_digits=3)
        elif fmt == 110:
            pack = decode_senml_json(request.payload, time_digits=3)
        else:
            return aiocoap.Message(code=aiocoap.UNSUPPORTED_CONTENT_FORMAT)
        assert pack.batch is not None, "uplink batches carry gw and batch"
        self.received.batches.append(pack.batch.seq)
        self.received.payload_sizes.append(len(request.payload))
        self.received.payloads.append(request.payload)
        last = self.received.last_batch.get(pack.batch.gateway_id, 0)
        if pack.batch.seq <= last:
            self.received.duplicates.append(pack.batch.seq)
            if self.out is not None:
                with self.out.open("a") as f:
                    f.write(json.dumps({"gw": pack.batch.gateway_id, "duplicate": pack.batch.seq}) + "\n")
        else:
            self.received.last_batch[pack.batch.gateway_id] = pack.batch.seq
            records = [(r.name, r.value, r.time) for r in pack.records]
            self.received.accepted.extend(records)
            self.received.sizes[pack.batch.seq] = len(records)
            if pack.dropped is not None:
                self.received.dropped[pack.batch.seq] = pack.dropped
            if self.out is not None:
                announced = pack.dropped and [pack.dropped.count, pack.dropped.first, pack.dropped.last]
                with self.out.open("a") as f:
                    f.write(
                        json.dumps(
                            {
                                "gw": pack.batch.gateway_id,
                                "batch": pack.batch.seq,
                                "records": records,
                                "dropped": announced,
                            }
                        )
                        + "\n"
                    )
                    f.flush()
                    os.fsync(f.fileno())
        if self.die_at_batch is not None and pack.batch.seq == self.die_at_batch:
            # Accepted and stored, but the gateway never hears about it.
            os._exit(9)
        return aiocoap.Message(code=aiocoap.CHANGED)

    render_put = render_post


class Receiver:
    """In-process receiver on 127.0.0.1:<port>, path /ingest."""

    def __init__(self, port: int | None = None, oscore: object | None = None):
        self.port = port or free_udp_port()
        self.received = Received()
        self.oscore = oscore
        self._context: aiocoap.Context | None = None

    @property
    def uri(self) -> str:
        return f"coap://127.0.0.1:{self.port}/ingest"

    async def __aenter__(self) -> Receiver:
        site = resource.Site()
        site.add_resource(["ingest"], BatchResource(self.received))
        root: object = site
        if self.oscore is not None:
            from aiocoap.credentials import CredentialsMap
            from aiocoap.oscore_sitewrapper import OscoreSiteWrapper

            credentials = CredentialsMap()
            credentials[":gateway"] = self.oscore
            root = OscoreSiteWrapper(site, credentials)
            self.received.require_oscore = True
        self._context = await aiocoap.Context.create_server_context(root, bind=("127.0.0.1", self.port))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._context is not None
        # Bounded: a hung shutdown must fail the test, not stall the run.
        await asyncio.wait_for(self._context.shutdown(), 10)


def _restore(received: Received, out: Path) -> None:
    if not out.exists():
        return
    for line in out.read_text().splitlines():
        entry = json.loads(line)
        if "batch" in entry:
            received.last_batch[entry["gw"]] = entry["batch"]


async def _serve(port: int, out: Path, die_at_batch: int | None) -> None:
    received = Received()
    _restore(received, out)
    site = resource.Site()
    site.add_resource(["ingest"], BatchResource(received, out, die_at_batch))
    context = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port))
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await context.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--die-at-batch", type=int)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.out, args.die_at_batch))


if __name__ == "__main__":
    main()
