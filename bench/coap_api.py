"""CoAP API figures, printed as JSON.

1. ``/readings`` paging throughput: readings/s served to a local aiocoap client that pages
   through a pre-filled buffer (SenML-CBOR and JSON, pages of --page readings, Block2 on).
2. Observe notification latency p50/p99: hub publish -> notification received by an
   aiocoap observer of ``/points/<device>/<point>`` on loopback.

Run: .venv/bin/python bench/coap_api.py [--readings 100000] [--page 1000] [--probes 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiocoap  # noqa: E402
import cbor2  # noqa: E402
from aiocoap.numbers.codes import Code  # noqa: E402

from gateway.config import load_config  # noqa: E402
from gateway.model import Reading  # noqa: E402
from gateway.service import Service  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site_config(directory: Path, port: int, page: int) -> Path:
    text = f"""
[gateway]
id = "bench"
data_dir = "data"

[store]
flush_interval = "20ms"
flush_readings = 5000
queue_size = 200000

[[devices]]
name = "probe"
driver = "simulated"
interval = "1h"
[devices.options]
[[devices.options.points]]
name = "value"

[api]
bind = "127.0.0.1"
port = {port}
public = ["readings", "points"]
max_page_size = {max(page, 1000)}
"""
    path = directory / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def fill(service: Service, count: int) -> None:
    now = time.time() - count
    batch: list[Reading] = []
    for i in range(count):
        batch.append(Reading(f"meter{i % 20}/energy", 1000.0 + i * 0.25, now + i * 0.01, "kWh"))
        if len(batch) == 5000:
            await service.hub.publish(batch)
            batch = []
    if batch:
        await service.hub.publish(batch)
    await service.store.flush()


async def page_through(ctx: aiocoap.Context, base: str, page: int, accept: int) -> tuple[int, float, int]:
    after, served, wire = 0, 0, 0
    started = time.perf_counter()
    while True:
        response = await ctx.request(
            aiocoap.Message(code=Code.GET, uri=f"{base}/readings?after={after}&limit={page}", accept=accept)
        ).response
        wire += len(response.payload)
        if accept == 112:
            records = cbor2.loads(response.payload)
            if not records:
                break
            served += len(records)
            after = records[0]["next"]
            if not records[0]["more"]:
                break
        else:
            doc = json.loads(response.payload)
            served += len(doc["readings"])
            after = doc["next"]
            if not doc["more"]:
                break
    return served, time.perf_counter() - started, wire


async def observe_latency(service: Service, ctx: aiocoap.Context, base: str, probes: int) -> list[float]:
    sent: dict[float, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    request = ctx.request(
        aiocoap.Message(code=Code.GET, uri=f"{base}/points/probe/value", observe=0, accept=60)
    )
    await request.response

    async def receive() -> None:
        async for note in request.observation:
            value = cbor2.loads(note.payload)["value"]
            if value in sent:
                latencies.append(time.perf_counter() - sent.pop(value))
                if len(latencies) >= probes:
                    done.set()
                    return

    receiver = asyncio.create_task(receive())
    for i in range(1, probes + 1):
        value = float(i)
        sent[value] = time.perf_counter()
        await service.hub.publish([Reading("probe/value", value, time.time())])
        await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(done.wait(), 10)
    except TimeoutError:
        pass
    receiver.cancel()
    request.observation.cancel()
    return latencies


async def main(args: argparse.Namespace) -> dict[str, object]:
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        service = Service(load_config(site_config(Path(tmp), port, args.page)))
        task = asyncio.create_task(service.run())
        await service.wait_ready()
        await fill(service, args.readings)
        base = f"coap://127.0.0.1:{port}"
        ctx = await aiocoap.Context.create_client_context()
        try:
            results: dict[str, object] = {"readings": args.readings, "page": args.page}
            for name, accept in (("senml_cbor", 112), ("json", 50)):
                served, seconds, wire = await page_through(ctx, base, args.page, accept)
                results[f"paging_{name}"] = {
                    "readings_served": served,
                    "seconds": round(seconds, 3),
                    "readings_per_s": round(served / seconds),
                    "bytes_per_reading": round(wire / served, 2),
                }
            latencies = await observe_latency(service, ctx, base, args.probes)
            ms = sorted(x * 1000 for x in latencies)
            results["observe"] = {
                "notifications": len(ms),
                "probes": args.probes,
                "p50_ms": round(statistics.median(ms), 3) if ms else None,
                "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3) if ms else None,
            }
        finally:
            await ctx.shutdown()
            service.stop()
            await task
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=300)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
