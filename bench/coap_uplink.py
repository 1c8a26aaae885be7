"""Uplink bench: backlog drain rate to a local CoAP receiver, and wire bytes per reading.

Prints JSON. Byte figures are for the exact default (values and times decode to the
buffer's doubles) and, side by side, for the lossy opt-in ``compact_floats``; the drain runs
the default. The receiver is an aiocoap server in its own process on 127.0.0.1 that decodes
every batch (as a platform would). The site mix imitates a street cabinet: an energy meter,
LoRaWAN climate sensors, car-park counters, door contacts and air quality, each device
polled on its own interval with one timestamp per poll.

    .venv/bin/python bench/coap_uplink.py [--readings 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.coap.senml import BatchId, encode_senml_cbor, encode_senml_json  # noqa: E402
from gateway.model import Reading  # noqa: E402

T0 = 1_767_225_600.0


def site_mix(count: int, seed: int = 1) -> list[Reading]:
    """Readings in time order, as the buffer would hold them after an outage."""
    rng = random.Random(seed)
    energy = 12_345.67
    devices = [
        # (device, interval s, [(point, unit, value function)])
        (
            "meter1",
            10,
            [
                ("voltage_l1", "V", lambda: round(rng.gauss(230, 1.5), 1)),
                ("voltage_l2", "V", lambda: round(rng.gauss(230, 1.5), 1)),
                ("voltage_l3", "V", lambda: round(rng.gauss(230, 1.5), 1)),
                ("current", "A", lambda: round(rng.uniform(5, 40), 2)),
                ("power", "W", lambda: rng.randint(800, 9000)),
                ("energy", "kWh", None),
                ("power_factor", None, lambda: round(rng.uniform(0.9, 1.0), 2)),
                ("frequency", "Hz", lambda: round(rng.gauss(50, 0.02), 2)),
            ],
        ),
        *[
            (
                f"climate{i}",
                60,
                [
                    ("temperature", "Cel", lambda: round(rng.gauss(18, 4), 1)),
                    ("humidity", "%RH", lambda: round(rng.uniform(30, 90), 1)),
                    ("battery", "V", lambda: round(rng.uniform(3.3, 3.7), 2)),
                ],
            )
            for i in range(4)
        ],
        (
            "carpark",
            30,
            [("free", None, lambda: rng.randint(0, 250)), ("occupied", None, lambda: rng.randint(0, 250))],
        ),
        *[(f"door{i}", 60, [("open", None, lambda: rng.random() < 0.1)]) for i in range(3)],
        (
            "air",
            30,
            [("pm2_5", "ug/m3", lambda: rng.randint(2, 60)), ("pm10", "ug/m3", lambda: rng.randint(5, 90))],
        ),
    ]
    out: list[Reading] = []
    tick = 0
    while len(out) < count:
        now = T0 + tick
        for device, interval, points in devices:
            if tick % interval:
                continue
            ts = now + rng.randint(0, 900) / 1000  # one timestamp per poll, ms resolution
            for point, unit, make in points:
                if make is None:
                    energy += rng.uniform(0.01, 0.03)
                    value: object = round(energy, 2)
                else:
                    value = make()
                out.append(Reading(f"{device}/{point}", value, ts, unit))
        tick += 1
    return out[:count]


def coap_bytes(payload: bytes, uri: str) -> int:
    """Bytes of every CoAP message (all Block1 blocks) carrying ``payload``, UDP/IP excluded."""
    import aiocoap

    message = aiocoap.Message(
        code=aiocoap.POST,
        mtype=aiocoap.CON,
        mid=1,
        uri=uri,
        payload=payload,
        content_format=112,
        token=b"\x01\x02",
    )
    if len(payload) <= 1024:
        return len(message.encode())
    total = 0
    for number in range((len(payload) + 1023) // 1024):
        block = message._extract_block(number, 6, 1024)
        if number == 0:
            block.opt.size1 = len(payload)
        block.mid = number + 1
        block.mtype = aiocoap.CON
        total += len(block.encode())
    return total


def wire_figures(readings: list[Reading]) -> dict[str, object]:
    """Bytes per reading of the exact default and, side by side, of lossy ``compact_floats``."""
    uri = "coap://upstream.example/ingest"
    figures: dict[str, object] = {}
    for batch_size in (100, 500, 5000):
        batches = [readings[i : i + batch_size] for i in range(0, len(readings), batch_size)]
        exact = [
            encode_senml_cbor(b, base_name="cabinet-17/", batch=BatchId("cabinet-17", n + 1))
            for n, b in enumerate(batches)
        ]
        lossy = [
            encode_senml_cbor(
                b,
                base_name="cabinet-17/",
                batch=BatchId("cabinet-17", n + 1),
                compact_floats=True,
                half_floats=True,
            )
            for n, b in enumerate(batches)
        ]
        js = [
            encode_senml_json(b, base_name="cabinet-17/", batch=BatchId("cabinet-17", n + 1))
            for n, b in enumerate(batches)
        ]
        n = len(readings)
        figures[f"batch_{batch_size}"] = {
            "senml_cbor_exact_bytes_per_reading": _per_reading(exact, n, uri),
            "senml_cbor_lossy_compact_floats_bytes_per_reading": _per_reading(lossy, n, uri),
            "senml_json_payload_bytes_per_reading": round(sum(map(len, js)) / n, 2),
        }
    return figures


def _per_reading(payloads: list[bytes], readings: int, uri: str) -> dict[str, float]:
    """Payload, CoAP (all Block1 blocks) and CoAP + UDP/IPv4 header bytes per reading."""
    coap = sum(coap_bytes(p, uri) for p in payloads)
    datagrams = sum((len(p) + 1023) // 1024 for p in payloads)
    return {
        "payload": round(sum(map(len, payloads)) / readings, 2),
        "coap": round(coap / readings, 2),
        "udp_ip": round((coap + 28 * datagrams) / readings, 2),
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve(port: int) -> None:
    import aiocoap
    import aiocoap.resource as resource

    from gateway.coap.senml import decode_senml_cbor

    class Ingest(resource.Resource):
        async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
            decode_senml_cbor(request.payload)
            return aiocoap.Message(code=aiocoap.CHANGED)

    site = resource.Site()
    site.add_resource(["ingest"], Ingest())
    await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port))
    print("ready", flush=True)
    await asyncio.Event().wait()


async def drain(count: int, backlog_batch_size: int) -> dict[str, object]:
    from gateway.config import load_config
    from gateway.service import Service

    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "gateway.toml"
            path.write_text(f"""
[gateway]
id = "cabinet-17"
data_dir = "data"

[[upstreams]]
name = "bench"
uri = "coap://127.0.0.1:{port}/ingest"
backlog_batch_size = {backlog_batch_size}
""")
            service = Service(load_config(path))
            await service.store.open()
            mix = _slice_cache(count)
            for start in range(0, count, 10_000):
                await service.store.put(mix[start : start + 10_000])
                await service.store.flush()  # the group-commit loop is not running yet
            await service.store.close()
            service = Service(load_config(path))
            task = asyncio.create_task(service.run())
            await service.wait_ready()
            uplink = service.components["upstreams"].uplinks["bench"]
            started = time.perf_counter()
            while uplink.cursor < count:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            health = uplink.health()
            service.stop()
            await task
    finally:
        receiver.terminate()
        receiver.wait(10)
    return {
        "readings": count,
        "backlog_batch_size": backlog_batch_size,
        "seconds": round(elapsed, 3),
        "readings_per_s": round(count / elapsed),
        "batches": health["batches_sent"],
        "payload_bytes_per_reading": round(health["bytes_sent"] / count, 2),
    }


_CACHE: dict[int, list[Reading]] = {}


def _slice_cache(count: int) -> list[Reading]:
    if count not in _CACHE:
        _CACHE[count] = site_mix(count)
    return _CACHE[count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    mix = _slice_cache(args.readings)
    result = {
        "bench": "coap_uplink",
        "wire": {"readings": len(mix), **wire_figures(mix[:50_000])},
        "drain": [asyncio.run(drain(args.readings, size)) for size in (1000, 5000)],
        "goals": {"drain_readings_per_s": 20_000, "senml_cbor_lossy_bytes_per_reading": 12},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
