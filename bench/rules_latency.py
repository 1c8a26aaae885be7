"""Rules engine figures, printed as JSON.

1. Reading-to-actuator-command latency (p50/p99) through a running service: 200 rules loaded,
   1,000 readings/s of background load, a probe rule whose write is timed when
   ``devices.write()`` returns on a simulated driver (the engine and actuation, no wire).
2. The latency a lamp sees: from a Modbus reading arriving at the gateway (the Modbus driver
   publishing the polled value) to the write request reaching a Modbus slave (modbus-tk, in
   its own process, on loopback), with the same 200 rules and 1,000 readings/s of background
   load. Both ends are stamped with CLOCK_MONOTONIC, shared by the two processes.
3. Evaluation cost per reading of the sans-IO engine with 500 rules loaded.

Run: .venv/bin/python bench/rules_latency.py [--probes 400] [--readings 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.config import load_config  # noqa: E402
from gateway.model import Reading  # noqa: E402
from gateway.rules.engine import Engine  # noqa: E402
from gateway.rules.loader import load_rule_file  # noqa: E402
from gateway.rules.timeofday import SiteTimes  # noqa: E402
from gateway.service import Service  # noqa: E402

BACKGROUND_POINTS = 50
OUTPUTS = 20


def site_config(directory: Path, modbus_port: int | None = None) -> Path:
    bg_points = "\n".join(f'[[devices.options.points]]\nname = "p{i}"' for i in range(BACKGROUND_POINTS))
    outputs = "\n".join(
        f'[[devices.options.points]]\nname = "out{i}"\nwritable = true' for i in range(OUTPUTS)
    )
    text = f"""
[gateway]
id = "bench"
latitude = 52.37
longitude = 4.89
data_dir = "data"

[store]
flush_interval = "50ms"

[[devices]]
name = "lamp"
driver = "simulated"
interval = "1h"
[devices.options]
[[devices.options.points]]
name = "level"
writable = true
{outputs}

[[devices]]
name = "probe"
driver = "simulated"
enabled = false
[devices.options]
[[devices.options.points]]
name = "trigger"

[[devices]]
name = "bg"
driver = "simulated"
enabled = false
[devices.options]
{bg_points}

[rules]
directory = "rules"
"""
    if modbus_port is not None:
        (directory / "sensor.toml").write_text(
            '[profile]\nname = "counter"\n[[points]]\nname = "trigger"\ntable = "input_register"\n'
            'address = 0\ntype = "uint16"\n'
        )
        text += f"""
[[devices]]
name = "sensor"
driver = "modbus"
interval = "20ms"
[devices.options]
profile = "sensor.toml"
transport = "tcp"
host = "127.0.0.1"
port = {modbus_port}
unit = 1

[[devices]]
name = "street-lamp"
driver = "modbus"
interval = "1h"
[devices.options]
profile = "lamp_controller"
transport = "tcp"
host = "127.0.0.1"
port = {modbus_port}
unit = 2
"""
    path = directory / "gateway.toml"
    path.write_text(text)
    return path


def background_rules(count: int) -> str:
    """Rules that read the background points and mostly do not fire: the realistic case."""
    out = []
    for i in range(count):
        p = f"bg/p{i % BACKGROUND_POINTS}"
        kind = i % 4
        if kind == 0:
            body = f'condition = "{p} > 1000"\nfor = "10m"'
        elif kind == 1:
            body = f"condition = \"avg('{p}', '5m') > 1000 and hour() >= 0\""
        elif kind == 2:
            body = f'[[rule.trigger]]\npoint = "{p}"\nabove = 1000'
        else:
            body = f'condition = "{p} * 2 + bg/p{(i + 1) % BACKGROUND_POINTS} > 5000"\nfor = "1m"'
        out.append(
            f'[[rule]]\nname = "bg-{i}"\n{body}\n[[rule.action]]\nset = "lamp/out{i % OUTPUTS}"\n'
            f'expr = "{p}"\n'
        )
    return "\n".join(out)


PROBE_RULE = """
[[rule]]
name = "probe"
[[rule.trigger]]
point = "probe/trigger"
[[rule.action]]
set = "lamp/level"
expr = "probe/trigger"
"""


class BackgroundLoad:
    """How many background readings ``background_load`` has published so far."""

    sent = 0


async def background_load(publish, stop: asyncio.Event, load: BackgroundLoad) -> None:  # type: ignore[no-untyped-def]
    """1,000 readings/s on the background points until ``stop``, paced on elapsed time so
    loop overhead does not lower the rate."""
    began = time.perf_counter()
    while not stop.is_set():
        due = int((time.perf_counter() - began) * 1000) - load.sent
        if due > 0:
            now = time.time()
            await publish(
                [
                    Reading(
                        f"bg/p{(load.sent + j) % BACKGROUND_POINTS}", float((load.sent * 7 + j) % 100), now
                    )
                    for j in range(due)
                ]
            )
            load.sent += due
        await asyncio.sleep(0.01)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure_latency(probes: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "rules").mkdir()
        (directory / "rules" / "background.toml").write_text(background_rules(199))
        (directory / "rules" / "probe.toml").write_text(PROBE_RULE)
        config = load_config(site_config(directory))
        service = Service(config)
        written: dict[float, float] = {}
        original_write = service.devices.write

        async def timed_write(point, value):
            await original_write(point, value)
            if point == "lamp/level":
                written[float(value)] = time.perf_counter()

        service.devices.write = timed_write  # type: ignore[method-assign]
        runner = asyncio.create_task(service.run())
        await service.wait_ready()
        rules = len(service.components["rules"].engine.rules)
        stop = asyncio.Event()
        load = BackgroundLoad()

        bg = asyncio.create_task(background_load(service.hub.publish, stop, load))
        await asyncio.sleep(1.0)
        started = time.perf_counter()
        sent: dict[float, float] = {}
        for i in range(probes):
            value = float(i + 1)
            sent[value] = time.perf_counter()
            await service.hub.publish([Reading("probe/trigger", value, time.time())])
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - started
        stop.set()
        await bg
        service.stop()
        await asyncio.wait_for(runner, 30)
        latencies = [(written[v] - sent[v]) * 1000 for v in sent if v in written]
        return {
            "rules_loaded": rules,
            "probes": probes,
            "probes_written": len(latencies),
            "background_readings_per_s": round(load.sent / (elapsed + 1.0), 1),
            "latency_ms_p50": round(percentile(latencies, 0.50), 3),
            "latency_ms_p99": round(percentile(latencies, 0.99), 3),
            "latency_ms_max": round(max(latencies), 3),
            "latency_ms_mean": round(statistics.fmean(latencies), 3),
        }


WIRE_RULE = """
[[rule]]
name = "wire-probe"
[[rule.trigger]]
point = "sensor/trigger"
[[rule.action]]
set = "street-lamp/level"
expr = "sensor/trigger"
"""


async def measure_wire_latency(probes: int) -> dict[str, float | int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    peer = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("modbus_peer_process.py")),
            "--port",
            str(port),
            "--count",
            str(probes),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert peer.stdout is not None
        assert peer.stdout.readline().strip() == "ready"
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            (directory / "rules").mkdir()
            (directory / "rules" / "background.toml").write_text(background_rules(199))
            (directory / "rules" / "probe.toml").write_text(WIRE_RULE)
            config = load_config(site_config(directory, port))
            service = Service(config)
            arrived: dict[int, float] = {}
            original_publish = service.hub.publish

            async def stamped_publish(batch):  # the moment the driver hands the reading over
                now = time.monotonic()
                for reading in batch:
                    if reading.point == "sensor/trigger" and int(reading.value) not in arrived:
                        arrived[int(reading.value)] = now
                await original_publish(batch)

            service.hub.publish = stamped_publish  # type: ignore[method-assign]
            for runner in service.devices.runners.values():  # drivers captured publish at build
                runner.ctx.publish = stamped_publish
            task = asyncio.create_task(service.run())
            await service.wait_ready()
            rules = len(service.components["rules"].engine.rules)
            stop = asyncio.Event()
            load = BackgroundLoad()

            bg = asyncio.create_task(background_load(original_publish, stop, load))
            began = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(None, peer.wait)
            elapsed = time.perf_counter() - began
            stop.set()
            await bg
            service.stop()
            await asyncio.wait_for(task, 30)
        received = {}
        for line in peer.stdout.read().splitlines():
            value, stamp = line.split()
            received.setdefault(int(value), float(stamp))
    finally:
        if peer.poll() is None:
            peer.kill()
        peer.wait()
    latencies = [(received[v] - arrived[v]) * 1000 for v in arrived if v in received and v > 0]
    return {
        "rules_loaded": rules,
        "sensor_values_seen": len(arrived),
        "writes_on_the_wire": len(latencies),
        "background_readings_per_s": round(load.sent / elapsed, 1),
        "latency_ms_p50": round(percentile(latencies, 0.50), 3),
        "latency_ms_p99": round(percentile(latencies, 0.99), 3),
        "latency_ms_max": round(max(latencies), 3),
        "latency_ms_mean": round(statistics.fmean(latencies), 3),
    }


def measure_evaluation(readings: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "rules").mkdir()
        config = load_config(site_config(directory))
        path = directory / "many.toml"
        path.write_text(background_rules(500))
        result = load_rule_file(path, config.points)
        assert result.ok, result.problems
        start = 1_767_225_600.0
        engine = Engine(SiteTimes("UTC", 52.37, 4.89), now=start)
        engine.load(result.rules)
        batch_size = 10
        batches = [
            [
                Reading(
                    f"bg/p{(b * batch_size + j) % BACKGROUND_POINTS}",
                    float((b * 7 + j) % 100),
                    start + b * 0.01,
                )
                for j in range(batch_size)
            ]
            for b in range(readings // batch_size)
        ]
        commands = 0
        began = time.perf_counter()
        for index, batch in enumerate(batches):
            now = start + index * 0.01
            commands += len(engine.feed(batch, now))
            deadline = engine.next_deadline()
            if deadline is not None and deadline <= now:
                commands += len(engine.tick(now))
        elapsed = time.perf_counter() - began
        return {
            "rules_loaded": len(engine.rules),
            "readings": readings,
            "evaluations": engine.evaluations,
            "commands": commands,
            "us_per_reading": round(elapsed / readings * 1e6, 2),
            "readings_per_s": round(readings / elapsed),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probes", type=int, default=400)
    parser.add_argument("--readings", type=int, default=50_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    latency = asyncio.run(measure_latency(args.probes))
    wire = asyncio.run(measure_wire_latency(args.probes))
    evaluation = measure_evaluation(args.readings)
    print(
        json.dumps(
            {
                "latency_200_rules_1000_readings_per_s": latency,
                "modbus_reading_to_modbus_write_on_the_wire": wire,
                "goal_p99_ms": 5.0,
                "evaluation_500_rules": evaluation,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
