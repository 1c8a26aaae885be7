"""Fleet bench: full gateway daemons plus a thousand lightweight gateways feeding one upstream.

Everything runs on 127.0.0.1 and sends to ONE receiver, an aiocoap server in its own process
that records every request (arrival time, gateway, batch number, its answer, the payload) in
an append-only file before answering, so it can be killed and started again (a city-wide
outage) without forgetting what it acknowledged.

- ``--daemons`` full gateways: real ``gateway run`` processes, each with a small site (a
  simulated streetlight and an air-quality sensor polled every ``--interval`` seconds,
  8 readings per poll) and the plain SenML+CBOR uplink with its default retry settings.
- ``--light`` lightweight gateways, ``--per-process`` of them in each process: each one is
  the project's own ``Store`` (its own SQLite file) and ``Uplink`` (its own cursor and CoAP
  socket), fed 8 synthetic readings every ``--interval`` seconds at a random phase.

Phases: steady state (``--steady`` s); a city-wide outage of ``--outage`` s: the receiver
crashes (for its first ``--crash-window`` s it stores requests but its answers never leave,
so those batches are at the receiver without the gateway knowing), then it is killed and
started again (the recovery instant is when it is listening again), until every gateway has sent a
reading made after recovery; an overload phase (``--overload`` s) where the receiver admits at
most ``--overload-capacity`` requests/s and answers the rest 4.29 or 5.03 with a Max-Age of
``--max-age-min`` to ``--max-age-max`` s, then normal answers until the backlog is gone. At the
end the light gateways stop producing and drain, the daemons get SIGTERM, and every reading in
every gateway's buffer is compared with what the receiver recorded.

Reported (JSON): the receiver's request rate per one-second bucket (peak, mean, per phase);
each gateway's first request after recovery relative to the recovery instant (percentiles,
10 s histogram, the most that landed in any one second); the time until every gateway's
pre-recovery backlog was at the receiver; readings lost and duplicated (and whether every
duplicate is a resend of one batch number); Max-Age violations in the overload phase; CPU
and RSS of every process (per daemon, per light process and per light gateway).

    .venv/bin/python bench/fleet.py [--daemons 100] [--light 1000] [--outage 120]

Buffers live in ``--dir`` (default a fresh directory in /dev/shm when there is one): on a
shared bench host, a thousand SQLite files fsyncing on one disk would measure that disk, not
the gateways, each of which has an SD card of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TICKS = os.sysconf("SC_CLK_TCK")
READINGS_PER_POLL = 8
CODE_TOO_MANY_REQUESTS = 157  # 4.29
CODE_SERVICE_UNAVAILABLE = 163  # 5.03
BLOCK_SIZE = 1024
#: recorded for a request the receiver stored but never answered (it was killed first)
STORED_UNANSWERED = 0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the receiver, run as `fleet.py --receiver PORT RECORDS` ----------------------------------


def batch_of_head(payload: bytes) -> tuple[str | None, int | None]:
    """Gateway id and batch number from the first record of a (possibly partial, Block1
    block 0) SenML+CBOR pack: the array header, then the first map."""
    import cbor2

    if not payload or payload[0] >> 5 != 4:
        return None, None
    extra = payload[0] & 0x1F
    skip = 1 + {24: 1, 25: 2, 26: 4, 27: 8}.get(extra, 0)
    try:
        first = cbor2.CBORDecoder(io.BytesIO(payload[skip:])).decode()
    except Exception:  # noqa: BLE001 - a block that ends inside the first record
        return None, None
    if not isinstance(first, dict):
        return None, None
    return first.get("gw"), first.get("batch")


async def receiver(port: int, records_path: Path) -> None:
    import aiocoap
    import aiocoap.resource as resource
    import cbor2

    from gateway.coap.senml import decode_senml_cbor

    fd = os.open(records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    rng = random.Random()
    state: dict[str, Any] = {
        "mode": "ok",
        "capacity": 0.0,
        "age_min": 1,
        "age_max": 1,
        "tokens": 0.0,
        "filled_at": time.time(),
        "alternate": 0,
    }
    max_ts: dict[str, float] = {}
    requests = 0

    def record(
        t: float, gw: str | None, batch: int | None, code: int, max_age: int | None, payload: bytes | None
    ) -> None:
        blob = cbor2.dumps([t, gw, batch, code, max_age, payload])
        os.write(fd, struct.pack(">I", len(blob)) + blob)  # one write: complete or absent

    def admit(now: float) -> tuple[int, int] | None:
        """None to accept this new request, else (code, Max-Age) to refuse it."""
        if state["mode"] != "overload":
            return None
        state["tokens"] = min(
            state["capacity"], state["tokens"] + (now - state["filled_at"]) * state["capacity"]
        )
        state["filled_at"] = now
        if state["tokens"] >= 1:
            state["tokens"] -= 1
            return None
        state["alternate"] ^= 1
        code = CODE_TOO_MANY_REQUESTS if state["alternate"] else CODE_SERVICE_UNAVAILABLE
        return code, rng.randint(state["age_min"], state["age_max"])

    class Ingest(resource.Resource):
        """Served as the whole site, so the request object aiocoap asks about blockwise
        assembly is the one it renders (and, for Block1, the one block 0 starts)."""

        async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
            block1 = request.opt.block1
            if block1 is None or block1.block_number == 0:
                now = time.time()
                request._fleet_started = now  # type: ignore[attr-defined]
                verdict = admit(now)
                if verdict is not None:
                    # Refused at its first datagram, as a loaded platform would.
                    request._fleet_refused = (now, *verdict)  # type: ignore[attr-defined]
                    return False
            return True

        async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
            nonlocal requests
            requests += 1
            refused = getattr(request, "_fleet_refused", None)
            if refused is not None:
                now, code, max_age = refused
                gw, batch = batch_of_head(request.payload)
                record(now, gw, batch, code, max_age, None)
                return aiocoap.Message(code=aiocoap.numbers.codes.Code(code), max_age=max_age)
            started = getattr(request, "_fleet_started", time.time())
            pack = decode_senml_cbor(request.payload)
            gw = pack.batch.gateway_id if pack.batch else None
            batch = pack.batch.seq if pack.batch else None
            crashing = state["mode"] == "crashing"
            record(
                started,
                gw,
                batch,
                STORED_UNANSWERED if crashing else int(aiocoap.CHANGED),
                None,
                request.payload,
            )
            if gw is not None and pack.records:
                max_ts[gw] = max(max_ts.get(gw, 0.0), max(r.time for r in pack.records))
            if crashing:
                await asyncio.Event().wait()  # stored, and the answer never leaves: killed first
            return aiocoap.Message(code=aiocoap.CHANGED)

    context = await aiocoap.Context.create_server_context(Ingest(), bind=("127.0.0.1", port))
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    print(json.dumps({"ready": time.time()}), flush=True)
    while line := (await commands.readline()).decode().split():
        match line:
            case ["stats"]:
                print(json.dumps({"max_ts": max_ts, "requests": requests}), flush=True)
            case ["crash"]:
                state["mode"] = "crashing"
                print(json.dumps({"mode": "crashing", "at": time.time()}), flush=True)
            case ["ok"]:
                state["mode"] = "ok"
                print(json.dumps({"mode": "ok", "at": time.time()}), flush=True)
            case ["overload", capacity, age_min, age_max]:
                state.update(
                    mode="overload",
                    capacity=float(capacity),
                    tokens=float(capacity),
                    filled_at=time.time(),
                    age_min=int(age_min),
                    age_max=int(age_max),
                )
                print(json.dumps({"mode": "overload", "at": time.time()}), flush=True)
            case ["exit"]:
                break
    await context.shutdown()
    os.close(fd)


# -- lightweight gateways, run as `fleet.py --light-process DIR PORT FIRST COUNT INTERVAL` ----


async def light_process(directory: Path, port: int, first: int, count: int, interval: float) -> None:
    """``count`` gateways in one event loop: the project's Store and Uplink, nothing else."""
    from types import SimpleNamespace

    from gateway.clock import SystemClock
    from gateway.coap.uplink import Uplink
    from gateway.coap.uplink_config import UpstreamConfig
    from gateway.model import Reading
    from gateway.store.config import StoreConfig
    from gateway.store.store import Store

    clock = SystemClock(assume_synced=True)
    gateways = []
    for number in range(first, first + count):
        gw = f"light-{number:04d}"
        data_dir = directory / gw
        store = Store(data_dir, StoreConfig())
        await store.open()
        config = UpstreamConfig(
            name="platform", uri=f"coap://127.0.0.1:{port}/ingest", gateway_id=gw, base_name=f"{gw}/"
        )
        store.consumers.append(config.cursor_name)
        uplink = Uplink(config, SimpleNamespace(store=store, clock=clock, config=None), data_dir)
        await uplink.open()
        gateways.append((gw, store, uplink))

    async def produce(gw: str, store: Store, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, interval))
        while True:
            now = time.time()
            await store.put(
                [
                    Reading(f"dev{k // 4}/p{k % 4}", round(rng.gauss(20, 5), 2), now, "Cel")
                    for k in range(READINGS_PER_POLL)
                ]
            )
            await asyncio.sleep(interval)

    producers, workers = [], []
    for gw, store, uplink in gateways:
        workers.append(asyncio.create_task(store.run()))
        workers.append(asyncio.create_task(uplink.run()))
        producers.append(asyncio.create_task(produce(gw, store, random.Random(gw))))
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    print(json.dumps({"ready": time.time(), "gateways": len(gateways)}), flush=True)
    while (await commands.readline()).decode().strip() not in ("finish", ""):
        pass
    # Stop producing, commit what is queued, and let every uplink catch up before closing.
    for task in producers:
        task.cancel()
    await asyncio.gather(*producers, return_exceptions=True)
    for _, store, _ in gateways:
        await store.flush()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and any(u.cursor < s.last_seq for _, s, u in gateways):
        await asyncio.sleep(0.5)
    behind = sum(1 for _, s, u in gateways if u.cursor < s.last_seq)
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    for _, store, uplink in gateways:
        await uplink.close()
        await store.close()
    print(json.dumps({"finished": time.time(), "gateways_behind_at_close": behind}), flush=True)


# -- full daemons ---------------------------------------------------------------------------


def daemon_site(directory: Path, gw: str, port: int, interval: float, seed: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "gateway.toml"
    path.write_text(f'''[gateway]
id = "{gw}"
data_dir = "data"
log_level = "warning"

[[upstreams]]
name = "platform"
uri = "coap://127.0.0.1:{port}/ingest"

[[devices]]
name = "lamp"
driver = "simulated"
interval = "{interval:g}s"
[devices.options]
profile = "streetlight"
seed = {seed}

[[devices]]
name = "air"
driver = "simulated"
interval = "{interval:g}s"
[devices.options]
profile = "air_quality"
seed = {seed}
''')
    return path


# -- /proc ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


# -- the orchestrator -----------------------------------------------------------------------


class Child:
    """A process the bench started; killed on the way out whatever happens."""

    ALL: list[Child] = []

    def __init__(self, name: str, argv: list[str], *, commands: bool, **kwargs: Any):
        self.name = name
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if commands else subprocess.DEVNULL,
            stdout=subprocess.PIPE if commands else subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            **kwargs,
        )
        Child.ALL.append(self)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name} exited (code {self.proc.wait()})")
        return dict(json.loads(line))

    def ask(self, line: str) -> dict[str, Any]:
        self.send(line)
        return self.answer()

    @classmethod
    def kill_all(cls) -> None:
        for child in cls.ALL:
            if child.proc.poll() is None:
                child.proc.kill()
        for child in cls.ALL:
            try:
                child.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


def percentiles(
    values: list[float], qs: tuple[int, ...] = (0, 10, 25, 50, 75, 90, 99, 100), digits: int = 2
) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for q in qs:
        index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
        out[f"p{q}"] = round(ordered[index], digits)
    return out


def rate_figures(times: list[float], start: float, end: float) -> dict[str, float]:
    """Requests per one-second bucket in [start, end)."""
    buckets = Counter(int(t - start) for t in times if start <= t < end)
    seconds = max(int(math.ceil(end - start)), 1)
    return {
        "seconds": round(end - start, 1),
        "requests": sum(buckets.values()),
        "mean_per_s": round(sum(buckets.values()) / (end - start), 1) if end > start else 0.0,
        "peak_per_s": max(buckets.values(), default=0),
        "peak_second_offset_s": max(buckets, key=lambda b: buckets[b]) if buckets else None,
        "median_per_s": sorted(buckets.get(i, 0) for i in range(seconds))[seconds // 2],
    }


def read_records(path: Path) -> list[tuple[float, str | None, int | None, int, int | None, bytes | None]]:
    import cbor2

    data = path.read_bytes()
    out, offset = [], 0
    while offset + 4 <= len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        if offset + 4 + size > len(data):
            break  # a record cut short by a kill: never answered, so never acknowledged
        out.append(tuple(cbor2.loads(data[offset + 4 : offset + 4 + size])))
        offset += 4 + size
    return out  # type: ignore[return-value]


class Fleet:
    def __init__(self, args: argparse.Namespace, directory: Path):
        self.args = args
        self.dir = directory
        self.port = free_udp_port()
        self.records = directory / "receiver.records"
        self.receiver: Child | None = None
        self.lights: list[Child] = []
        self.daemons: list[tuple[str, Child, Path]] = []
        self.light_ids: list[str] = [f"light-{n:04d}" for n in range(args.light)]
        self.marks: dict[str, float] = {}
        self.samples: dict[str, list[tuple[float, float, float]]] = defaultdict(list)  # name -> (t, cpu, rss)
        self.receiver_cpu: dict[str, float] = {}

    # processes

    def start_receiver(self) -> float:
        self.receiver = Child(
            "receiver",
            [sys.executable, __file__, "--receiver", str(self.port), str(self.records)],
            commands=True,
        )
        return float(self.receiver.answer()["ready"])

    def start(self) -> None:
        self.start_receiver()
        per = self.args.per_process
        for first in range(0, self.args.light, per):
            count = min(per, self.args.light - first)
            name = f"light{first // per}"
            self.lights.append(
                Child(
                    name,
                    [
                        sys.executable,
                        __file__,
                        "--light-process",
                        str(self.dir / "light"),
                        str(self.port),
                        str(first),
                        str(count),
                        str(self.args.interval),
                    ],
                    commands=True,
                    stderr=open(self.dir / f"{name}.log", "w"),
                )
            )
        for light in self.lights:
            light.answer()
        for n in range(self.args.daemons):
            gw = f"daemon-{n:03d}"
            config = daemon_site(self.dir / "daemons" / gw, gw, self.port, self.args.interval, n)
            child = Child(
                gw,
                [sys.executable, "-m", "gateway", "run", "--config", str(config)],
                commands=False,
                stderr=open(config.parent / "stderr.log", "w"),
            )
            self.daemons.append((gw, child, config.parent / "data" / "buffer.db"))
            time.sleep(self.args.daemon_stagger)  # each start imports the whole gateway
        self.wait_all_sent_after(time.time(), "startup", timeout=180)

    def gateway_ids(self) -> list[str]:
        return self.light_ids + [gw for gw, _, _ in self.daemons]

    def processes(self) -> dict[str, int]:
        pids = {c.name: c.proc.pid for c in self.lights}
        pids.update({gw: c.proc.pid for gw, c, _ in self.daemons})
        if self.receiver is not None and self.receiver.proc.poll() is None:
            pids["receiver"] = self.receiver.proc.pid
        return pids

    def sample(self) -> None:
        now = time.time()
        for name, pid in self.processes().items():
            self.samples[name].append((now, cpu_seconds(pid), rss_mb(pid)))

    def wait_all_sent_after(self, since: float, what: str, timeout: float) -> float | None:
        """Until every gateway has a reading made after ``since`` at the receiver (it delivers
        in order, so everything older went before it); the time that was seen, or None."""
        assert self.receiver is not None
        deadline = time.time() + timeout
        ids = self.gateway_ids()
        while time.time() < deadline:
            max_ts = self.receiver.ask("stats")["max_ts"]
            behind = [gw for gw in ids if max_ts.get(gw, 0.0) <= since]
            if not behind:
                return time.time()
            self.sample()
            time.sleep(1.0)
        print(
            f"fleet: {what}: {len(behind)} gateways still behind after {timeout:.0f} s, e.g. {behind[:5]}",
            file=sys.stderr,
        )
        return None

    def hold(self, seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            self.sample()
            time.sleep(min(2.0, max(end - time.time(), 0)))

    # the scenario

    def run(self) -> None:
        args = self.args
        self.marks["started"] = time.time()
        self.start()
        self.marks["all_sending"] = time.time()
        self.hold(5)
        self.marks["steady_start"] = time.time()
        self.sample()
        self.hold(args.steady)
        self.marks["steady_end"] = time.time()
        self.sample()
        # City-wide outage: the upstream crashes (for ``--crash-window`` it stores requests
        # but its answers never leave), then it is gone (port closed) for the whole duration.
        assert self.receiver is not None
        self.marks["outage_start"] = time.time()
        if args.crash_window > 0:
            self.receiver.ask("crash")
            self.hold(args.crash_window)
        self.receiver.proc.kill()
        self.receiver.proc.wait()
        self.hold(args.outage - args.crash_window)
        self.marks["recovery"] = self.start_receiver()
        drained = self.wait_all_sent_after(self.marks["recovery"], "recovery", args.drain_timeout)
        self.marks["recovery_all_sent_new"] = drained or time.time()
        self.hold(5)
        steady_rate = self.steady_rate()
        capacity = args.overload_capacity or max(round(steady_rate * 0.5, 1), 1.0)
        self.overload_capacity = capacity
        self.marks["overload_start"] = float(
            self.receiver.ask(f"overload {capacity} {args.max_age_min} {args.max_age_max}")["at"]
        )
        self.hold(args.overload)
        self.marks["overload_end"] = float(self.receiver.ask("ok")["at"])
        drained = self.wait_all_sent_after(self.marks["overload_end"], "after overload", args.drain_timeout)
        self.marks["overload_all_sent_new"] = drained or time.time()
        self.sample()
        self.finish()

    def steady_rate(self) -> float:
        times = [r[0] for r in read_records(self.records)]
        return rate_figures(times, self.marks["steady_start"], self.marks["steady_end"])["mean_per_s"]

    def finish(self) -> None:
        assert self.receiver is not None
        for light in self.lights:
            light.send("finish")
        for _, child, _ in self.daemons:
            child.proc.send_signal(signal.SIGTERM)
        self.light_close = [light.answer() for light in self.lights]
        for _, child, _ in self.daemons:
            try:
                child.proc.wait(60)
            except subprocess.TimeoutExpired:
                child.proc.kill()
        self.daemon_exit_codes = Counter(child.proc.wait() for _, child, _ in self.daemons)
        for light in self.lights:
            light.proc.wait(30)
        self.marks["finished"] = time.time()
        self.receiver_cpu_s = cpu_seconds(self.receiver.proc.pid)
        self.receiver_rss = rss_mb(self.receiver.proc.pid)
        self.receiver.send("exit")
        self.receiver.proc.wait(30)

    # the figures

    def stores(self) -> list[tuple[str, Path]]:
        out = [(gw, self.dir / "light" / gw / "buffer.db") for gw in self.light_ids]
        return out + [(gw, db) for gw, _, db in self.daemons]

    def report(self) -> dict[str, Any]:
        from gateway.coap.senml import decode_senml_cbor
        from gateway.store.database import Database

        marks = self.marks
        records = read_records(self.records)
        times = [r[0] for r in records]
        accepted = [r for r in records if r[3] // 32 == 2 or r[3] == STORED_UNANSWERED]
        refused = [r for r in records if r[3] in (CODE_TOO_MANY_REQUESTS, CODE_SERVICE_UNAVAILABLE)]

        # Every reading the receiver acknowledged: first arrival, copies, batch numbers.
        first_seen: dict[tuple[str, str, float], float] = {}
        values: dict[tuple[str, str, float], Any] = {}
        copies: dict[tuple[str, str, float], list[int]] = defaultdict(list)
        datagrams = []
        for t, gw, batch, _code, _age, payload in accepted:
            assert payload is not None
            datagrams.append((t, max(1, -(-len(payload) // BLOCK_SIZE))))
            prefix = f"{gw}/"
            for rec in decode_senml_cbor(payload).records:
                key = (gw or "", rec.name.removeprefix(prefix), rec.time)
                first_seen.setdefault(key, t)
                values.setdefault(key, rec.value)
                copies[key].append(batch or 0)

        # Every reading committed in every gateway's buffer.
        lost = pending_unacked = value_mismatch = committed = 0
        lost_by_gateway: dict[str, int] = {}
        drain_s: list[float] = []
        recovery = marks["recovery"]
        for gw, db_path in self.stores():
            db = Database(db_path, readonly=True)
            try:
                cursor = db.get_cursor("uplink:platform") or 0
                readings = db.read_after(0, 10**9)
            finally:
                db.close()
            committed += len(readings)
            backlog_done = recovery
            for r in readings:
                key = (gw, r.point, r.ts)
                if key not in first_seen:
                    if r.seq <= cursor:
                        lost += 1
                        lost_by_gateway[gw] = lost_by_gateway.get(gw, 0) + 1
                    else:
                        pending_unacked += 1
                    continue
                if values[key] != r.value:
                    value_mismatch += 1
                if r.ts < recovery:
                    backlog_done = max(backlog_done, first_seen[key])
            drain_s.append(backlog_done - recovery)

        duplicated = {k: v for k, v in copies.items() if len(v) > 1}
        dup_outside_one_batch = sum(1 for v in duplicated.values() if len(set(v)) > 1)
        dup_batches = {(k[0], v[0]) for k, v in duplicated.items()}
        dup_gateways = Counter(gw for gw, _ in dup_batches)
        unanswered = {(r[1], r[2]) for r in records if r[3] == STORED_UNANSWERED}

        # First request of each gateway after the receiver came back.
        first_after: dict[str, float] = {}
        for t, gw, *_ in records:
            if gw is not None and t >= recovery and gw not in first_after:
                first_after[gw] = t - recovery
        spread = sorted(first_after.values())
        per_second = Counter(int(s) for s in spread)

        # Max-Age: nothing from a gateway before the Max-Age it was given ran out.
        by_gateway: dict[str, list[tuple[float, int, int | None]]] = defaultdict(list)
        for t, gw, _batch, code, age, _payload in records:
            if gw is not None:
                by_gateway[gw].append((t, code, age))
        violations, gaps, unknown = 0, [], 0
        for rows in by_gateway.values():
            rows.sort()
            for (t, code, age), following in zip(rows, [*rows[1:], None], strict=True):
                if code not in (CODE_TOO_MANY_REQUESTS, CODE_SERVICE_UNAVAILABLE) or following is None:
                    continue
                gap = following[0] - (t + (age or 0))
                gaps.append(gap)
                violations += gap < 0
        unknown = sum(1 for r in refused if r[1] is None)

        def cpu_rss(name: str, start: float, end: float) -> tuple[float, float]:
            rows = [s for s in self.samples[name] if start - 3 <= s[0] <= end + 3 and not math.isnan(s[1])]
            if len(rows) < 2:
                return math.nan, math.nan
            cpu = (rows[-1][1] - rows[0][1]) / (rows[-1][0] - rows[0][0]) * 100
            return cpu, max(s[2] for s in rows)

        def process_figures(start: float, end: float) -> dict[str, Any]:
            daemons = [cpu_rss(gw, start, end) for gw, _, _ in self.daemons]
            lights = [cpu_rss(c.name, start, end) for c in self.lights]
            receiver_cpu, receiver_rss = cpu_rss("receiver", start, end)
            out: dict[str, Any] = {
                "receiver_cpu_percent_of_one_core": round(receiver_cpu, 1),
                "receiver_rss_mb": round(receiver_rss, 1),
            }
            if daemons:
                out["daemon_cpu_percent_of_one_core"] = percentiles([c for c, _ in daemons], (50, 90, 100))
                out["daemon_rss_mb"] = percentiles([r for _, r in daemons], (50, 90, 100))
                out["daemons_total_cpu_percent"] = round(sum(c for c, _ in daemons), 1)
                out["daemons_total_rss_mb"] = round(sum(r for _, r in daemons))
            if lights:
                out["light_process_cpu_percent_of_one_core"] = [round(c, 1) for c, _ in lights]
                out["light_process_rss_mb"] = [round(r, 1) for _, r in lights]
                out["light_gateway_cpu_percent_of_one_core"] = round(
                    sum(c for c, _ in lights) / self.args.light, 4
                )
                out["light_gateway_rss_kb"] = round(sum(r for _, r in lights) / self.args.light * 1024, 1)
            return out

        phases = {
            "steady": (marks["steady_start"], marks["steady_end"]),
            "recovery": (recovery, marks["recovery_all_sent_new"]),
            "overload": (marks["overload_start"], marks["overload_end"]),
            "after_overload": (marks["overload_end"], marks["overload_all_sent_new"]),
        }
        rates = {name: rate_figures(times, a, b) for name, (a, b) in phases.items()}
        for name, (a, b) in phases.items():
            blocks = sum(n for t, n in datagrams if a <= t < b)
            rates[name]["accepted_block1_datagrams_per_s_mean"] = round(blocks / (b - a), 1) if b > a else 0.0
        overload_rows = [r for r in records if phases["overload"][0] <= r[0] < phases["overload"][1]]
        gateways = len(self.gateway_ids())
        return {
            "bench": "fleet",
            "gateways": {
                "daemons": len(self.daemons),
                "light": self.args.light,
                "light_processes": len(self.lights),
                "light_per_process": self.args.per_process,
                "total": gateways,
            },
            "load": {
                "readings_per_poll": READINGS_PER_POLL,
                "poll_interval_s": self.args.interval,
                "fleet_readings_per_s": round(gateways * READINGS_PER_POLL / self.args.interval, 1),
                "buffers_in": str(self.dir),
            },
            "durations_s": {
                "steady": self.args.steady,
                "outage": round(recovery - marks["outage_start"], 1),
                "overload": self.args.overload,
                "whole_bench": round(marks["finished"] - marks["started"], 1),
                "startup_until_all_sent": round(marks["all_sending"] - marks["started"], 1),
            },
            "receiver_requests": {
                "whole_run": rate_figures(times, marks["started"], marks["finished"]),
                **rates,
            },
            "reconnect_storm": {
                "gateways_retried_after_recovery": len(first_after),
                "first_request_after_recovery_s": percentiles(spread),
                "histogram_10s": {
                    f"{b * 10}-{b * 10 + 10}": n
                    for b, n in sorted(Counter(int(s // 10) for s in spread).items())
                },
                "most_first_requests_in_one_second": max(per_second.values(), default=0),
                "of_gateways": gateways,
            },
            "drain": {
                "every_gateway_backlog_at_receiver_after_s": round(max(drain_s), 1) if drain_s else None,
                "per_gateway_backlog_at_receiver_after_s": percentiles(drain_s, (50, 90, 99, 100)),
                "every_gateway_sent_post_recovery_reading_after_s": round(
                    marks["recovery_all_sent_new"] - recovery, 1
                ),
                "outage_readings_buffered_per_gateway": round(
                    READINGS_PER_POLL * (recovery - marks["outage_start"]) / self.args.interval
                ),
            },
            "integrity": {
                "stored_but_never_answered_requests": sum(1 for r in records if r[3] == STORED_UNANSWERED),
                "readings_committed": committed,
                "readings_acknowledged_at_receiver": len(first_seen),
                "readings_lost": lost,
                "lost_by_gateway": dict(list(lost_by_gateway.items())[:10]),
                "readings_unacknowledged_at_stop": pending_unacked,
                "values_differing": value_mismatch,
                "readings_duplicated": len(duplicated),
                "duplicate_batches": len(dup_batches),
                "gateways_with_duplicates": len(dup_gateways),
                "most_duplicate_batches_one_gateway": max(dup_gateways.values(), default=0),
                "duplicates_not_a_resend_of_one_batch": dup_outside_one_batch,
                "duplicate_batches_not_left_unanswered": len(dup_batches - unanswered),
            },
            "overload": {
                "capacity_requests_per_s": self.overload_capacity,
                "max_age_s": [self.args.max_age_min, self.args.max_age_max],
                "requests": len(overload_rows),
                "accepted": sum(1 for r in overload_rows if r[3] // 32 == 2),
                "refused_4_29": sum(1 for r in overload_rows if r[3] == CODE_TOO_MANY_REQUESTS),
                "refused_5_03": sum(1 for r in overload_rows if r[3] == CODE_SERVICE_UNAVAILABLE),
                "refusals_followed_by_a_request": len(gaps),
                "max_age_violations": violations,
                "seconds_after_max_age_of_next_request": {
                    k: round(v, 4) for k, v in percentiles(gaps, (0, 50, 90, 100), digits=4).items()
                },
                "refusals_without_gateway_id": unknown,
            },
            "processes": {
                "steady": process_figures(*phases["steady"]),
                "recovery": process_figures(*phases["recovery"]),
                "overload": process_figures(*phases["overload"]),
                "receiver_cpu_s_since_recovery": round(self.receiver_cpu_s, 1),
                "receiver_rss_mb_at_end": round(self.receiver_rss, 1),
            },
            "shutdown": {
                "light_processes": self.light_close,
                "daemon_exit_codes": dict(self.daemon_exit_codes),
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--receiver", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--light-process", nargs=5, help=argparse.SUPPRESS)
    # 100 daemons took 14 % of one core and 3 GB here (2 shared cores, 24 GB); see README
    parser.add_argument("--daemons", type=int, default=100, help="full `gateway run` processes")
    parser.add_argument("--light", type=int, default=1000, help="lightweight gateways")
    parser.add_argument("--per-process", type=int, default=250, help="lightweight gateways per process")
    parser.add_argument("--interval", type=float, default=10.0, help="poll interval (8 readings each)")
    parser.add_argument("--steady", type=float, default=60.0)
    parser.add_argument("--outage", type=float, default=120.0)
    parser.add_argument(
        "--crash-window",
        type=float,
        default=2.0,
        help="seconds before the outage in which the receiver stores requests but never answers",
    )
    parser.add_argument("--overload", type=float, default=60.0)
    parser.add_argument(
        "--overload-capacity",
        type=float,
        default=0.0,
        help="requests/s admitted when overloaded (default: half the steady rate)",
    )
    parser.add_argument("--max-age-min", type=int, default=2)
    parser.add_argument("--max-age-max", type=int, default=10)
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--daemon-stagger", type=float, default=0.5, help="seconds between daemon starts")
    parser.add_argument("--dir", type=Path, help="where buffers go (default: a new directory in /dev/shm)")
    parser.add_argument("--keep", action="store_true", help="keep the buffers and records")
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(receiver(int(args.receiver[0]), Path(args.receiver[1])))
        return
    if args.light_process:
        directory, port, first, count, interval = args.light_process
        asyncio.run(light_process(Path(directory), int(port), int(first), int(count), float(interval)))
        return

    import resource as rlimit

    _, hard = rlimit.getrlimit(rlimit.RLIMIT_NOFILE)
    rlimit.setrlimit(rlimit.RLIMIT_NOFILE, (hard, hard))  # a few sockets and files per gateway
    base = args.dir or (Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    directory = Path(tempfile.mkdtemp(prefix="fleet-", dir=base))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    fleet = Fleet(args, directory)
    try:
        fleet.run()
        result = fleet.report()
    finally:
        Child.kill_all()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    result["command"] = " ".join(["bench/fleet.py", *sys.argv[1:]])
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
