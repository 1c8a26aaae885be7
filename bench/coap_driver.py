"""CoAP driver figures, printed as JSON: two real gateway daemons on loopback.

1. Cross-cabinet latency p50/p99: a loop-detector reading on gateway B -> B's API notifies A
   (Observe, OSCORE) -> A's rule -> A's coap driver PUTs (OSCORE) -> B's actuation path
   applies the lamp level. Measured on B's own clock: the time of B's loop reading to the
   time of B's ``events/actuation`` record of the write (both from B's buffer).
2. The cost of observing N remote points (default 1,000) that each change once per
   ``--interval`` on B: time until A has a reading of every one, notifications per second A
   stores, A's CPU share and resident memory, against the same A observing one point.

Run: .venv/bin/python bench/coap_driver.py [--probes 200] [--points 1000] [--interval 1s]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiocoap  # noqa: E402
import cbor2  # noqa: E402
from aiocoap.numbers.codes import Code  # noqa: E402

from gateway.coap.credentials import OscoreKeys, oscore_context  # noqa: E402
from tests.coap_driver.helpers import free_port  # noqa: E402
from tests.coap_driver.peers import GATEWAY_ID, SALT, SECRET, TESTER_ID, Daemon, write_a, write_b  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(interval)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def applied_at(b: Daemon, value: int, since_ms: int) -> int | None:
    """When B's actuation path recorded the lamp write of ``value`` from its API (A's rule)."""
    for ts, body in b.readings("events/actuation", since_ms):
        record = json.loads(body)
        if record["point"] == "lamp/level" and record.get("value") == value and record["source"] == "api":
            return ts
    return None


async def latency(directory: Path, probes: int) -> dict[str, Any]:
    port = free_port()
    b = Daemon(write_b(directory / "b", port))
    a = Daemon(write_a(directory / "a", port))
    b.start()
    a.start()
    samples: list[float] = []
    tester = await aiocoap.Context.create_client_context()
    keys = OscoreKeys(
        bytes.fromhex(TESTER_ID), bytes.fromhex(GATEWAY_ID), bytes.fromhex(SECRET), bytes.fromhex(SALT)
    )
    security = oscore_context(keys, directory / "tester-oscore")
    tester.client_credentials[f"coap://127.0.0.1:{port}/*"] = security
    try:
        await wait_for(
            lambda: any(r["point"] == "lamp/level" and r["source"] == "api" for r in b.actuations())
        )
        for i in range(probes):
            occupied = i % 2 == 0
            want = 80 if occupied else 20
            since = int(time.time() * 1000)
            answer = await tester.request(
                aiocoap.Message(
                    code=Code.PUT,
                    uri=f"coap://127.0.0.1:{port}/points/loop/occupied",
                    payload=cbor2.dumps(occupied),
                    content_format=60,
                )
            ).response
            assert answer.code == Code.CHANGED, answer
            await wait_for(lambda: applied_at(b, want, since) is not None, timeout=30, interval=0.005)  # noqa: B023
            read_at = next(ts for ts, value in b.readings("loop/occupied", since) if bool(value) is occupied)
            samples.append((applied_at(b, want, since) or 0) - read_at)
    finally:
        await tester.shutdown()
        security._destroy()  # aiocoap's persist-and-unlock, while the directory still exists
        a.stop()
        b.stop()
    return {
        "probes": len(samples),
        "p50_ms": percentile(samples, 0.5),
        "p99_ms": percentile(samples, 0.99),
        "max_ms": max(samples),
        "mean_ms": round(statistics.fmean(samples), 2),
        "clock": "B's buffer timestamps (whole milliseconds)",
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def observe_cost(
    directory: Path, points: int, interval: str, window: float, observe: str
) -> dict[str, Any]:
    port = free_port()
    body = "\n".join(
        f'[[devices.options.points]]\nname = "p{i}"\nwaveform = "counter"' for i in range(points)
    )
    config = write_b(directory / "b", port, interval=interval)
    config.write_text(
        config.read_text() + f'\n[[devices]]\nname = "meter"\ndriver = "simulated"\n'
        f'interval = "{interval}"\n[devices.options]\nprofile = "custom"\n{body}\n'
    )
    b = Daemon(config)
    # B's points change every --interval: a freshness cap well above it, so the figure is the
    # steady cost of notifications and not of re-registrations
    a = Daemon(write_a(directory / "a", port, rules=None, observe=observe, max_age_cap=30.0))
    b.start()
    try:
        await wait_for(lambda: b.latest(f"meter/p{points - 1}") is not None)
        started = time.monotonic()
        a.start()
        assert a.proc is not None
        wanted = points if observe != "[]" else 0

        def seen() -> int:
            rows = a.rows("SELECT COUNT(*) FROM points WHERE name LIKE 'cabinet-b/meter/%'")
            return int(rows[0][0]) if rows else 0

        await wait_for(
            lambda: seen() >= wanted and a.latest("cabinet-b/loop/occupied") is not None, timeout=180
        )
        subscribed_s = time.monotonic() - started
        await asyncio.sleep(2.0)  # settle: registrations done, first notifications stored
        count_sql = "SELECT COUNT(*) FROM readings_view WHERE point LIKE 'cabinet-b/meter/%'"
        cpu0, n0, t0 = cpu_seconds(a.proc.pid), a.rows(count_sql)[0][0], time.monotonic()
        await asyncio.sleep(window)
        cpu1, n1, t1 = cpu_seconds(a.proc.pid), a.rows(count_sql)[0][0], time.monotonic()
        return {
            "points": wanted,
            "all_subscribed_s": round(subscribed_s, 2),
            "notifications_per_s": round((n1 - n0) / (t1 - t0), 1),
            "a_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
            "a_rss_mb": round(rss_mb(a.proc.pid), 1),
        }
    finally:
        a.stop()
        b.stop()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-coap-driver-") as tmp:
        root = Path(tmp)
        result: dict[str, Any] = {"cross_cabinet_latency": await latency(root / "latency", args.probes)}
        result["observe_cost"] = await observe_cost(
            root / "many", args.points, args.interval, args.window, '["meter/*"]'
        )
        result["observe_baseline"] = await observe_cost(
            root / "few", args.points, args.interval, args.window, "[]"
        )
        result["observe_baseline"]["note"] = "same A and B, A observing only its 2 declared points"
        result["machine"] = {"cpus": os.cpu_count(), "note": "2 cores shared with other work; loopback"}
        return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--interval", default="1s", help="how often each of B's points changes")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of steady state measured")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
