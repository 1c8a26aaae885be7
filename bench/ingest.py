"""End-to-end ingest: a synthetic high-rate driver -> hub -> SQLite, against the fastest raw
SQLite writer of the same rows, with the same durability and commit size, on the same disk.

The ceiling must be one the gateway cannot beat, so it gets every advantage: rows pre-built
before the clock starts, no gateway code, and the best of two raw writers (serial, and
pipelined as the gateway is: a writer thread commits one batch while the next is handed over).
Raw and gateway trials alternate, each in a fresh child process, three of each; the medians
are reported, and each side's peak RSS is its own child's, not this process's.

Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import queue
import resource
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from gateway.config import DeviceConfig, load_config
from gateway.driver import Driver, PointSpec
from gateway.model import Reading
from gateway.service import Service
from gateway.store.config import StoreConfig
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
            batch = [
                Reading(f"synth/p{(sent + i) % POINTS}", float(sent + i), t0 + (sent + i) / 1000, "W")
                for i in range(BATCH)
            ]
            await self.ctx.publish(batch)
            sent += BATCH
        await asyncio.Event().wait()


def make_rows(total: int) -> list[Reading]:
    t0 = 1_767_225_600.0
    return [Reading(f"synth/p{i % POINTS}", float(i), t0 + i / 1000, "W") for i in range(total)]


def _raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for version in sorted(MIGRATIONS):  # the gateway's own schema, every migration of it
        for statement in MIGRATIONS[version].statements:
            conn.execute(statement)
    for i in range(POINTS):
        conn.execute("INSERT INTO points (id, name, unit) VALUES (?, ?, 'W')", (i + 1, f"synth/p{i}"))
    return conn


def _commit(conn: sqlite3.Connection, rows: list[tuple[int, int, float, int]]) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO readings (point, ts, value, flags) VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")


def raw_ceiling(directory: Path, total: int, batch: int, mode: str) -> float:
    """Pre-built tuples, same schema and pragmas, same commit size, no gateway code at all.

    ``serial``: one thread inserts and commits batch after batch. ``pipelined``: a writer
    thread commits while the main thread hands it the next batch through a bounded queue."""
    conn = _raw_connection(directory / f"raw-{mode}.db")
    rows = [
        (i % POINTS + 1, int(r.ts * 1000), r.value, _encode_flags(r)) for i, r in enumerate(make_rows(total))
    ]
    batches = [rows[offset : offset + batch] for offset in range(0, total, batch)]
    start = time.perf_counter()
    if mode == "serial":
        for chunk in batches:
            _commit(conn, chunk)
    else:
        handoff: queue.Queue[list[tuple[int, int, float, int]] | None] = queue.Queue(maxsize=2)

        def writer() -> None:
            while (chunk := handoff.get()) is not None:
                _commit(conn, chunk)

        thread = threading.Thread(target=writer)
        thread.start()
        for chunk in batches:
            handoff.put(chunk)
        handoff.put(None)
        thread.join()
    elapsed = time.perf_counter() - start
    conn.close()
    return total / elapsed


async def gateway_ingest(directory: Path, total: int, store_config: StoreConfig) -> float:
    site = directory / "site.toml"
    site.write_text(f'[gateway]\nid = "bench"\ndata_dir = "{directory / "gw"}"\n')
    config = load_config(site)
    device = DeviceConfig(
        "synth", "synthetic", None, True, None, tuple(SyntheticDriver.declare_points(None)), SyntheticDriver
    )
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


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _trial(kind: str, directory: str, total: int, flush_readings: int) -> tuple[float, float]:
    """One measurement in a fresh child process: (readings/s, the child's peak RSS in MB)."""
    path = Path(directory)
    if kind == "gateway":
        store_config = dataclasses.replace(StoreConfig(), flush_readings=flush_readings, max_age=None)
        rate = asyncio.run(gateway_ingest(path, total, store_config))
    else:
        rate = max(
            raw_ceiling(path, total, flush_readings, "serial"),
            raw_ceiling(path, total, flush_readings, "pipelined"),
        )
    return rate, _peak_rss_mb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--flush-readings", type=int, default=StoreConfig().flush_readings)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="directory on the disk to measure (default: a temp dir)")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"raw": [], "gateway": []}
    spawn = multiprocessing.get_context("spawn")
    for _ in range(args.trials):
        for kind in ("raw", "gateway"):  # alternate, so drift on a noisy machine hits both
            with tempfile.TemporaryDirectory(dir=args.dir) as tmp, spawn.Pool(1) as pool:
                results[kind].append(pool.apply(_trial, (kind, tmp, args.readings, args.flush_readings)))
    raw = statistics.median(rate for rate, _ in results["raw"])
    gateway = statistics.median(rate for rate, _ in results["gateway"])
    print(
        json.dumps(
            {
                "readings": args.readings,
                "commit_batch": args.flush_readings,
                "synchronous": "FULL",
                "trials": args.trials,
                "raw_ceiling_readings_per_s": round(raw),
                "raw_ceiling_trials": [round(rate) for rate, _ in results["raw"]],
                "gateway_end_to_end_readings_per_s": round(gateway),
                "gateway_trials": [round(rate) for rate, _ in results["gateway"]],
                "ratio": round(gateway / raw, 3),
                "goal_ratio": 0.5,
                "gateway_peak_rss_mb": max(rss for _, rss in results["gateway"]),
                "raw_peak_rss_mb": max(rss for _, rss in results["raw"]),
            }
        )
    )


if __name__ == "__main__":
    main()
