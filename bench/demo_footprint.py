"""RSS, PSS and CPU of the gateway running the built-in demo site, sampled from /proc.

Runs `gateway demo --quiet` in a subprocess. That process is the gateway (daemon and CoAP
API); the demo's simulated peers (Modbus server, packet-forwarder simulator, serial and
sensor simulators) run in a child process of it, as real devices would be other machines.
Both are reported, apart: the ``gateway_*`` figures are the gateway's alone, ``peers_*``
the simulators', so the gateway's budget is never flattered or blamed by its test peers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def rss_kb(pid: int) -> int:
    return status_kb(pid, "VmRSS")


def pss_kb(pid: int) -> int:
    """Proportional set size: shared library pages divided among the processes using them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    out = []
    for child in children(pid):
        out += [child, *descendants(child)]
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "demo", "--quiet", "--data-dir", tmp],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(args.warmup)
            if proc.poll() is not None:
                raise SystemExit(f"demo exited early: {proc.communicate()[1]}")
            peers = descendants(proc.pid)
            if not peers:
                raise SystemExit("demo started no peer process")
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            peers_cpu0 = sum(cpu_seconds(p) for p in peers)
            samples, pss_samples, peer_samples = [], [], []
            while time.monotonic() - t0 < args.seconds:
                samples.append(rss_kb(proc.pid))
                pss_samples.append(pss_kb(proc.pid))
                peer_samples.append(sum(rss_kb(p) for p in peers))
                time.sleep(1.0)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            peers_cpu1 = sum(cpu_seconds(p) for p in peers)
            peers_pss_kb = sum(pss_kb(p) for p in peers)
            # Anonymous memory is the gateway's own; file-backed is shared libraries
            # (Python, SQLite, two OpenSSLs: the ssl module's and cryptography's).
            anon_kb, file_kb = status_kb(proc.pid, "RssAnon"), status_kb(proc.pid, "RssFile")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        stored = 0
        db = Path(tmp) / "data" / "buffer.db"
        if db.exists():
            import sqlite3

            stored = sqlite3.connect(db).execute("SELECT count(*) FROM readings").fetchone()[0]
    print(json.dumps({
        "seconds": round(t1 - t0, 1),
        "gateway_rss_mb_max": round(max(samples) / 1024, 1),
        "gateway_rss_mb_end": round(samples[-1] / 1024, 1),
        "gateway_pss_mb_max": round(max(pss_samples) / 1024, 1),
        "gateway_rss_anon_mb_end": round(anon_kb / 1024, 1),
        "gateway_rss_file_mb_end": round(file_kb / 1024, 1),
        "gateway_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
        "peers_processes": len(peers),
        "peers_rss_mb_max": round(max(peer_samples) / 1024, 1),
        "peers_pss_mb_end": round(peers_pss_kb / 1024, 1),
        "peers_cpu_percent_of_one_core": round(100 * (peers_cpu1 - peers_cpu0) / (t1 - t0), 2),
        "readings_stored": stored,
        "goal_gateway_rss_mb": 40,
        "goal_idle_cpu_percent": 1.0,
        "exit_code": proc.returncode,
    }))


if __name__ == "__main__":
    main()
