"""RSS, PSS and CPU of the gateway running the built-in demo site, used as a person uses it.

Runs `gateway demo --quiet` in a subprocess. That process is the gateway (daemon and CoAP
API); the demo's simulated peers (Modbus server, packet-forwarder simulator, serial and
sensor simulators) run in a child process of it, as real devices would be other machines.
Both are reported, apart: the ``gateway_*`` figures are the gateway's alone, ``peers_*``
the simulators', so the gateway's budget is never flattered or blamed by its test peers.

Before and while memory is sampled the bench runs the commands the demo prints: CoAP reads
(a point, discovery, a page of readings, health) with libcoap's ``coap-client-notls``, an
Observe of a point that stays open through the sampling, and the OSCORE-protected write
with ``aiocoap-client`` (one before sampling, one in the middle). ``gateway_vmhwm_mb`` is
the process's peak RSS over its whole life (start-up included); the ``*_max`` figures are the
highest of the once-a-second samples. The API loads OSCORE (aiocoap.oscore and its
dependencies) on the first protected request, so ``gateway_*_before_oscore`` is the gateway
after the plain reads and before the first OSCORE write (what a site whose API is never
written to pays), and the sampled figures include OSCORE. Which imports cost what:
bench/import_costs.py. The CPU figure includes that traffic (an Observe notification every
few seconds), so it is near idle but not idle.

    .venv/bin/python bench/demo_footprint.py [--seconds 60] [--warmup 10]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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


def threads(pid: int) -> int:
    return status_kb(pid, "Threads")


def announced(lines: queue.Queue[str], deadline: float) -> tuple[str, list[str]]:
    """The API's base URI and the OSCORE write command, from the lines the demo prints."""
    base, write = "", []
    while not (base and write) and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if match := re.search(r"CoAP API: (coap://\S+)", line):
            base = match.group(1)
        if "write (OSCORE):" in line:
            write = shlex.split(line.split("write (OSCORE):", 1)[1])
    if not (base and write):
        raise SystemExit("the demo did not print its CoAP API and OSCORE write commands")
    return base, write


def coap_get(uri: str, accept: int = 50) -> str:
    run = subprocess.run(
        ["coap-client-notls", "-B", "10", "-A", str(accept), uri], capture_output=True, text=True, timeout=30
    )
    if run.returncode != 0 or not run.stdout.strip():
        raise SystemExit(f"coap-client-notls {uri} failed: {run.stderr.strip()}")
    return run.stdout


def oscore_write(command: list[str], value: int) -> None:
    """The demo's OSCORE write, with ``value`` as its payload."""
    command = list(command)
    command[command.index("--payload") + 1] = str(value)
    run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        raise SystemExit(f"the OSCORE write failed: {(run.stderr or run.stdout).strip()}")


def exercise(base: str) -> None:
    """The reads the demo suggests."""
    coap_get(f"{base}/points/lamp-1/power")
    coap_get(f"{base}/.well-known/core", accept=40)
    coap_get(f"{base}/readings?after=0&limit=50", accept=110)
    coap_get(f"{base}/health")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    args = parser.parse_args()
    if shutil.which("coap-client-notls") is None:
        raise SystemExit("coap-client-notls (libcoap3-bin) is needed to use the demo's API")
    observe = None
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "demo", "--quiet", "--data-dir", tmp],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        try:
            base, write = announced(lines, time.monotonic() + 60)
            time.sleep(args.warmup)
            if proc.poll() is not None:
                raise SystemExit(f"demo exited early: {proc.communicate()[1]}")
            peers = descendants(proc.pid)
            if not peers:
                raise SystemExit("demo started no peer process")
            exercise(base)
            before_oscore = rss_kb(proc.pid), pss_kb(proc.pid)
            oscore_write(write, 40)
            # the Observe the demo prints as "live", open through the sampling
            observe = subprocess.Popen(
                [
                    "coap-client-notls",
                    "-w",
                    "-s",
                    str(int(args.seconds) + 30),
                    "-A",
                    "0",
                    f"{base}/points/carpark/occupied",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            peers_cpu0 = sum(cpu_seconds(p) for p in peers)
            samples, pss_samples, peer_samples = [], [], []
            wrote_again = False
            while time.monotonic() - t0 < args.seconds:
                samples.append(rss_kb(proc.pid))
                pss_samples.append(pss_kb(proc.pid))
                peer_samples.append(sum(rss_kb(p) for p in peers))
                if not wrote_again and time.monotonic() - t0 > args.seconds / 2:
                    exercise(base)
                    oscore_write(write, 60)
                    wrote_again = True
                time.sleep(1.0)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            peers_cpu1 = sum(cpu_seconds(p) for p in peers)
            peers_pss_kb = sum(pss_kb(p) for p in peers)
            # Anonymous memory is the gateway's own (Python objects, malloc arenas); file-backed
            # is shared libraries (Python, SQLite, the ssl module's libcrypto, cryptography's
            # Rust extension with its own statically linked OpenSSL).
            anon_kb, file_kb = status_kb(proc.pid, "RssAnon"), status_kb(proc.pid, "RssFile")
            hwm_kb, thread_count = status_kb(proc.pid, "VmHWM"), threads(proc.pid)
            observe.terminate()
            notifications = len(observe.communicate(timeout=10)[0].splitlines())
            level = json.loads(coap_get(f"{base}/points/lamp-1/level"))["value"]
        finally:
            if observe is not None and observe.poll() is None:
                observe.kill()
                observe.wait()
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
    print(
        json.dumps(
            {
                "seconds": round(t1 - t0, 1),
                "gateway_rss_mb_max": round(max(samples) / 1024, 1),
                "gateway_rss_mb_end": round(samples[-1] / 1024, 1),
                "gateway_pss_mb_max": round(max(pss_samples) / 1024, 1),
                "gateway_vmhwm_mb": round(hwm_kb / 1024, 1),
                "gateway_rss_mb_before_oscore": round(before_oscore[0] / 1024, 1),
                "gateway_pss_mb_before_oscore": round(before_oscore[1] / 1024, 1),
                "gateway_rss_anon_mb_end": round(anon_kb / 1024, 1),
                "gateway_rss_file_mb_end": round(file_kb / 1024, 1),
                "gateway_threads": thread_count,
                "gateway_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
                "exercised": {
                    "coap_reads": 9,
                    "oscore_writes": 2,
                    "observe_notifications": notifications,
                    "lamp_1_level_after_writes": level,
                },
                "peers_processes": len(peers),
                "peers_rss_mb_max": round(max(peer_samples) / 1024, 1),
                "peers_pss_mb_end": round(peers_pss_kb / 1024, 1),
                "peers_cpu_percent_of_one_core": round(100 * (peers_cpu1 - peers_cpu0) / (t1 - t0), 2),
                "readings_stored": stored,
                "goal_gateway_rss_mb": 40,
                "goal_idle_cpu_percent": 1.0,
                "exit_code": proc.returncode,
            }
        )
    )


if __name__ == "__main__":
    main()
