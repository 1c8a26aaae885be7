"""The whole gateway at 100, 1,000, 10,000 points at 1 Hz and 50,000 points every 10 s.

For each size a real ``gateway run`` process polls simulated devices (10 points each) and
forwards everything over CoAP to a receiver in another process that decodes every batch with
plain cbor2. Figures per size, over a window after every point has been seen:
- CPU seconds of the gateway process per 1,000 readings produced;
- readings delivered upstream per second against readings produced per second;
- RSS and PSS of the gateway process (from /proc, the process alone);
- seconds from start until every point has its first reading in the buffer.

Goal: CPU per 1,000 readings at 50,000 points within 2x of the figure at 1,000, delivery
keeping up with production, every point seen within one interval plus a few seconds.

    .venv/bin/python bench/scale.py [--sizes 100,1000,10000,50000] [--window 20]

Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
POINTS_PER_DEVICE = 10
#: SenML record keys that carry a value: v, vs, vb, vd
VALUE_KEYS = (2, 3, 4, 8)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site(directory: Path, points: int, interval: str, port: int) -> Path:
    point_tables = "".join(
        f'[[devices.options.points]]\nname = "p{i}"\nmax = {i + 1}\n' for i in range(POINTS_PER_DEVICE)
    )
    devices = "".join(
        f'[[devices]]\nname = "d{n}"\ndriver = "simulated"\ninterval = "{interval}"\n'
        f'[devices.options]\nprofile = "custom"\nseed = {n}\n{point_tables}'
        for n in range(points // POINTS_PER_DEVICE)
    )
    path = directory / "gateway.toml"
    path.write_text(
        f'[gateway]\nid = "scale-{points}"\ndata_dir = "data"\nlog_level = "warning"\n\n'
        f'[[upstreams]]\nname = "platform"\nuri = "coap://127.0.0.1:{port}/ingest"\n\n{devices}'
    )
    return path


# -- the receiver, run as `scale.py --serve PORT` ------------------------------------------------


async def serve(port: int) -> None:
    import aiocoap
    import aiocoap.resource as resource
    import cbor2

    received = 0

    class Ingest(resource.Resource):
        async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
            nonlocal received
            records = cbor2.loads(request.payload)
            received += sum(1 for r in records if any(k in r for k in VALUE_KEYS))
            return aiocoap.Message(code=aiocoap.CHANGED)

    class Count(resource.Resource):
        async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
            return aiocoap.Message(payload=str(received).encode())

    root = resource.Site()
    root.add_resource(["ingest"], Ingest())
    root.add_resource(["count"], Count())
    await aiocoap.Context.create_server_context(root, bind=("127.0.0.1", port))
    print("ready", flush=True)
    await asyncio.Event().wait()


async def received_count(port: int) -> int:
    import aiocoap

    context = await aiocoap.Context.create_client_context()
    try:
        answer = await context.request(
            aiocoap.Message(code=aiocoap.GET, uri=f"coap://127.0.0.1:{port}/count")
        ).response
        return int(answer.payload)
    finally:
        await context.shutdown()


# -- the gateway process ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return round(rss / 1024, 1), round(pss / 1024, 1)


def buffer_figures(db: Path) -> tuple[int, int]:
    """(points that have a reading, last sequence number) as any reader of the buffer sees them."""
    if not db.exists():
        return 0, 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        points = conn.execute("SELECT count(*) FROM points").fetchone()[0]
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone()
        return int(points), int(row[0]) if row else 0
    except sqlite3.OperationalError:
        return 0, 0
    finally:
        conn.close()


def measure(points: int, interval_s: float, window: float) -> dict[str, object]:
    port = free_udp_port()
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True
    )
    assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = site(directory, points, f"{interval_s:g}s", port)
        db = directory / "data" / "buffer.db"
        started = time.monotonic()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(config)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            all_seen_after = None
            limit = started + interval_s + 120
            while time.monotonic() < limit:
                if gateway.poll() is not None:
                    raise SystemExit(f"gateway exited: {gateway.communicate()[1][-2000:]}")
                if buffer_figures(db)[0] >= points:
                    all_seen_after = time.monotonic() - started
                    break
                time.sleep(0.2)
            time.sleep(min(5.0, interval_s))  # settle: the first polls' burst is over
            cpu0, t0 = cpu_seconds(gateway.pid), time.monotonic()
            seq0, up0 = buffer_figures(db)[1], asyncio.run(received_count(port))
            peak_rss = peak_pss = 0.0
            while time.monotonic() - t0 < window:
                rss, pss = memory_mb(gateway.pid)
                peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
                time.sleep(1.0)
            cpu1, t1 = cpu_seconds(gateway.pid), time.monotonic()
            seq1, up1 = buffer_figures(db)[1], asyncio.run(received_count(port))
            sent = time.monotonic()
            gateway.send_signal(signal.SIGTERM)
            gateway.communicate(timeout=30)
            stop_s = time.monotonic() - sent
        finally:
            if gateway.poll() is None:
                gateway.kill()
                gateway.wait()
            receiver.terminate()
            receiver.wait(10)
    produced = seq1 - seq0
    elapsed = t1 - t0
    return {
        "points": points,
        "interval_s": interval_s,
        "window_s": round(elapsed, 1),
        "produced_per_s": round(produced / elapsed, 1),
        "delivered_upstream_per_s": round((up1 - up0) / elapsed, 1),
        "cpu_s_per_1000_readings": round((cpu1 - cpu0) / produced * 1000, 4) if produced else None,
        "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / elapsed, 1),
        "rss_mb_peak": peak_rss,
        "pss_mb_peak": peak_pss,
        "all_points_seen_after_s": None if all_seen_after is None else round(all_seen_after, 1),
        "sigterm_to_exit_s": round(stop_s, 2),
        "exit_code": gateway.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="100,1000,10000,50000")
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    results = []
    for points in (int(s) for s in args.sizes.split(",")):
        interval = 10.0 if points >= 50_000 else 1.0
        results.append(measure(points, interval, max(args.window, 3 * interval)))
    by_points = {r["points"]: r for r in results}
    summary: dict[str, object] = {"sizes": results}
    if 1000 in by_points and 50_000 in by_points:
        base, big = by_points[1000]["cpu_s_per_1000_readings"], by_points[50_000]["cpu_s_per_1000_readings"]
        if base and big:
            summary["cpu_per_1000_ratio_50000_vs_1000"] = round(big / base, 2)
            summary["goal_ratio_at_most"] = 2.0
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
