"""``gateway export`` figures, printed as JSON: readings/s and the exporting process's peak RSS
for buffers of growing size. Peak RSS stays flat while the range grows: the export streams.

Run: .venv/bin/python bench/export.py [--sizes 100000,400000] [--points 50]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.model import Reading  # noqa: E402
from gateway.store import Database  # noqa: E402

START = 1764633600.0  # 2025-12-02T00:00:00Z


def fill(path: Path, count: int, points: int) -> None:
    db = Database(path)
    batch = []
    for i in range(count):
        batch.append(Reading(f"dev-{i % points}/value", i * 0.1, START + i * 0.01, "V"))
        if len(batch) == 5000:
            db.insert(batch)
            batch = []
    if batch:
        db.insert(batch)
    db.checkpoint()
    db.close()


def export(data_dir: Path, fmt: str) -> dict[str, float]:
    """One export in a child process; its peak RSS from wait4's rusage."""
    begun = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "export", "--data-dir", str(data_dir), "--utc", "--format", fmt],
        stdout=subprocess.PIPE,
    )
    lines = sum(1 for _ in proc.stdout)  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - begun
    return {
        "lines": lines,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": proc.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,400000")
    parser.add_argument("--points", type=int, default=50)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            data = Path(tmp) / f"data-{size}"
            data.mkdir()
            fill(data / "buffer.db", size, args.points)
            for fmt in ("csv", "ndjson"):
                run = export(data, fmt)
                results.append(
                    {"readings": size, "format": fmt, **run, "readings_per_s": round(size / run["seconds"])}
                )
    print(
        json.dumps(
            {
                "bench": "export",
                "python": sys.version.split()[0],
                "self_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
