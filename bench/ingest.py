"""End-to-end ingest: a synthetic high-rate driver -> hub -> SQLite, against the raw
``executemany`` ceiling for the same rows on the same disk, measured in the same run.

Prints JSON: readings/s for both, their ratio, and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway.config import DeviceConfig, StoreConfig, load_config
from gateway.driver import Driver, PointSpec
from gateway.model import Reading
from gateway.service import Service
from gateway.store.database import _encode_flags
from gateway.store.schema import MIGRATIONS

POINTS = 200
BATCH = 500


class SyntheticDriver(Driver):
    """Publishes batches as fast as the hub accepts them, then stops publishing."""

    name = "synthetic"

    @classmethod
    def parse_options(cls, options: Any, config_dir: Path) -> Any:
        return None

    @classmethod
    def declare_points(cls, options: Any) -> list[PointSpec]:
        return [PointSpec(f"p{i}") for i in range(POINTS)]

    async def run(self) -> None:
        total = self.ctx.extras["total"]
        t0 = 1_767_225_600.0
        sent = 0
        while sent < total:
            batch = [Reading(f"synth/p{(sent + i) % POINTS}", float(sent + i), t0 + (sent + i) / 1000, "W")
                     for i in range(BATCH)]
            await self.ctx.publish(batch)
            sent += BATCH
        await asyncio.Event().wait()


def make_rows(total: int) -> list[Reading]:
    t0 = 1_767_225_600.0
    return [Reading(f"synth/p{i % POINTS}", float(i), t0 + i / 1000, "W") for i in range(total)]


def raw_ceiling(directory: Path, total: int, batch: int) -> float:
    """Pre-built tuples, same schema and pragmas, same commit size, no gateway code at all."""
    path = directory / "raw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for statement in MIGRATIONS[1]:
        conn.execute(statement)
    for i in range(POINTS):
        conn.execute("INSERT INTO points (id, name, unit) VALUES (?, ?, 'W')", (i + 1, f"synth/p{i}"))
    rows = [(i % POINTS + 1, int(r.ts * 1000), r.value, _encode_flags(r)) for i, r in enumerate(make_rows(total))]
    start = time.perf_counter()
    for offset in range(0, total, batch):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO readings (point, ts, value, flags) VALUES (?, ?, ?, ?)",
                         rows[offset: offset + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return total / elapsed


async def gateway_ingest(directory: Path, total: int, store_config: StoreConfig) -> float:
    site = directory / "site.toml"
    site.write_text(f'[gateway]\nid = "bench"\ndata_dir = "{directory / "gw"}"\n')
    config = load_config(site)
    device = DeviceConfig("synth", "synthetic", None, True, None,
                          tuple(SyntheticDriver.declare_points(None)), SyntheticDriver)
    config = dataclasses.replace(config, devices=(device,), store=store_config)
    service = Service(config)
    service.devices.runners["synth"].ctx.extras["total"] = total
    task = asyncio.create_task(service.run())
    await service.wait_ready()
    start = time.perf_counter()
    while service.store.last_seq < total:
        await service.store.wait_committed(service.store.last_seq, timeout=1.0)
    elapsed = time.perf_counter() - start
    service.stop()
    await task
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--flush-readings", type=int, default=StoreConfig().flush_readings)
    parser.add_argument("--dir", type=Path, help="directory on the disk to measure (default: a temp dir)")
    args = parser.parse_args()
    store_config = dataclasses.replace(StoreConfig(), flush_readings=args.flush_readings, max_age=None)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        raw = raw_ceiling(directory, args.readings, args.flush_readings)
        gateway = asyncio.run(gateway_ingest(directory, args.readings, store_config))
    print(json.dumps({
        "readings": args.readings,
        "commit_batch": args.flush_readings,
        "synchronous": "FULL",
        "raw_executemany_readings_per_s": round(raw),
        "gateway_end_to_end_readings_per_s": round(gateway),
        "ratio": round(gateway / raw, 3),
        "goal_ratio": 0.5,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
