"""What the health snapshot costs the event loop, at 10, 100 and 1,000 devices.

Every ``SNAPSHOT_INTERVAL`` the daemon builds its health dict, judges it and serialises it
on the loop; only the file write (temp, fsync, rename) runs in a thread. This measures the
on-loop part (``Service.health()`` + ``json.dumps``) and the threaded write, with every
device polling, so a site can see the pause it adds to control.

    .venv/bin/python bench/health_snapshot.py [--sizes 10,100,1000] [--rounds 50]

Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.atomicfile import write_atomically  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.service import Service  # noqa: E402

SITE = """
[gateway]
id = "bench"
data_dir = "data"
"""
DEVICE = """
[[devices]]
name = "lamp-{i}"
driver = "simulated"
interval = "1s"
[devices.options]
profile = "streetlight"
"""


async def measure(devices: int, rounds: int, directory: Path) -> dict[str, float | int]:
    config_path = directory / "gateway.toml"
    config_path.write_text(SITE + "".join(DEVICE.format(i=i) for i in range(devices)))
    service = Service(load_config(config_path))
    runner = asyncio.create_task(service.run())
    await service.wait_ready()
    await asyncio.sleep(1.5)  # every device has polled
    on_loop, writes, size = [], [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        text = json.dumps(service.health(), default=str, separators=(",", ":"))
        on_loop.append(time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.to_thread(write_atomically, directory / "bench-health.json", text)
        writes.append(time.perf_counter() - started)
        size = len(text)
        await asyncio.sleep(0.02)
    service.stop()
    await runner
    return {
        "devices": devices,
        "snapshot_bytes": size,
        "on_loop_ms_median": round(statistics.median(on_loop) * 1000, 3),
        "on_loop_ms_max": round(max(on_loop) * 1000, 3),
        "threaded_write_ms_median": round(statistics.median(writes) * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(asyncio.run(measure(size, args.rounds, Path(tmp))))
    print(json.dumps({"bench": "health_snapshot", "results": results}, indent=2))


if __name__ == "__main__":
    main()
