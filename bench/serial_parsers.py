"""Serial bench: frames/s one parser sustains per protocol, and gateway CPU with 20 sensors at 1 frame/s.

The second part runs the real service with 20 PMS5003 devices on 20 socat pty pairs while a separate
writer process plays the sensors, so the figure is the gateway process's own CPU. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.serial import nmea, plantower, sds011  # noqa: E402
from drivers.serial.line import LineField, LineParser, LineRules  # noqa: E402


def _pms(i: int) -> bytes:
    return plantower.encode_data_frame([i % 500 + k for k in range(12)])


def _streams(frames: int) -> dict[str, tuple[object, bytes]]:
    rules = LineRules(
        patterns=(re.compile(r"^CNT (?P<in>\d+) (?P<out>\d+) T=(?P<t>-?\d+)$"),),
        fields=(
            LineField("in", "in", "int"),
            LineField("out", "out", "int"),
            LineField("t", "t", "float", scale=0.1),
        ),
    )
    return {
        "pms5003": (plantower.PlantowerParser, b"".join(_pms(i) for i in range(frames))),
        "sds011": (
            sds011.Sds011Parser,
            b"".join(sds011.encode_data_frame(i % 900 / 10, i % 999 / 10) for i in range(frames)),
        ),
        "nmea_gga": (
            nmea.NmeaParser,
            b"".join(
                nmea.encode_sentence(
                    f"GPGGA,1235{i % 60:02d},4807.{i % 1000:03d},N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
                )
                for i in range(frames)
            ),
        ),
        "line": (
            lambda: LineParser(rules),
            b"".join(b"CNT %d %d T=%d\r\n" % (i, i // 2, i % 300) for i in range(frames)),
        ),
    }


def parser_rates(frames: int, chunk: int) -> dict[str, dict[str, float]]:
    out = {}
    for name, (factory, data) in _streams(frames).items():
        best = float("inf")
        for _ in range(3):
            parser = factory()  # type: ignore[operator]
            decoded = 0
            started = time.perf_counter()
            for i in range(0, len(data), chunk):
                decoded += sum(1 for e in parser.feed(data[i : i + chunk]) if getattr(e, "samples", None))
            best = min(best, time.perf_counter() - started)
            assert decoded == frames, (name, decoded)
        out[name] = {
            "frames_per_s": round(frames / best),
            "mb_per_s": round(len(data) / best / 1e6, 2),
            "frame_bytes": len(data) // frames,
        }
    return out


# -- 20 sensors at 1 frame/s ----------------------------------------------------------------
def writer_main(peers: list[str], seconds: float) -> None:
    """Child process: every sensor sends one PMS5003 frame per second, staggered across the second."""
    fds = [os.open(p, os.O_RDWR | os.O_NOCTTY) for p in peers]
    start = time.monotonic()
    sent = 0
    tick = 0
    while time.monotonic() - start < seconds:
        for index, fd in enumerate(fds):
            due = start + tick + index / len(fds)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            os.write(fd, _pms(tick * len(fds) + index))
            sent += 1
        tick += 1
    print(sent)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def twenty_sensors(sensors: int, seconds: float, idle_seconds: float) -> dict[str, object]:
    from gateway.config import load_config
    from gateway.service import Service

    socat = shutil.which("socat")
    if socat is None:
        return {"skipped": "socat is not installed"}
    work = Path(tempfile.mkdtemp(prefix="serial-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        devices = []
        for i in range(sensors):
            dev, peer = work / f"air{i}", work / f"air{i}.peer"
            procs.append(
                subprocess.Popen(
                    [socat, f"pty,raw,echo=0,link={dev}", f"pty,raw,echo=0,link={peer}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            devices.append(
                f'[[devices]]\nname = "air{i}"\ndriver = "serial"\n[devices.options]\n'
                f'port = "{dev}"\nprotocol = "pms5003"\n'
            )
        deadline = time.monotonic() + 10
        while not all(
            (work / f"air{i}.peer").exists() and (work / f"air{i}").exists() for i in range(sensors)
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("socat did not create the pty links")
            await asyncio.sleep(0.02)
        site = work / "gateway.toml"
        site.write_text(
            '[gateway]\nid = "bench"\ndata_dir = "data"\n[store]\nflush_interval = "200ms"\n'
            + "\n".join(devices),
            encoding="utf-8",
        )
        service = Service(load_config(site))
        task = asyncio.create_task(service.run())
        await service.wait_ready()
        runners = service.devices.runners

        def frames() -> int:
            return sum(r.health_report().get("detail", {}).get("frames", 0) for r in runners.values())

        await asyncio.sleep(1.0)
        cpu0, wall0 = _cpu_seconds(), time.monotonic()
        await asyncio.sleep(idle_seconds)
        idle_cpu = (_cpu_seconds() - cpu0) / (time.monotonic() - wall0)

        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--writer",
            str(seconds),
            *[str(work / f"air{i}.peer") for i in range(sensors)],
            stdout=subprocess.PIPE,
        )
        cpu0, wall0 = _cpu_seconds(), time.monotonic()
        stdout, _ = await writer.communicate()
        writing = time.monotonic() - wall0
        await asyncio.sleep(1.0)  # let the last frames land and commit
        busy_cpu = (_cpu_seconds() - cpu0) / (time.monotonic() - wall0)
        sent = int(stdout.decode().strip() or 0)
        received = frames()
        bad = sum(
            sum(r.health_report().get("detail", {}).get("bad_frames", {}).values()) for r in runners.values()
        )
        service.stop()
        await asyncio.wait_for(task, 15)
        return {
            "sensors": sensors,
            "seconds": seconds,
            "frames_sent": sent,
            "frames_decoded": received,
            "bad_frames": bad,
            "readings_per_s": round(received * 12 / writing, 1),
            "gateway_cpu_percent_idle": round(idle_cpu * 100, 3),
            "gateway_cpu_percent_at_1_frame_per_s_each": round(busy_cpu * 100, 2),
            "note": "CPU of the gateway process only (parsing, hub, SQLite group commit); one core = 100",
        }
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        writer_main(sys.argv[3:], float(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=64, help="bytes per feed(), like one serial read")
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    result = {
        "parser_throughput": parser_rates(args.frames, args.chunk),
        "chunk_bytes": args.chunk,
        "service_20_sensors": asyncio.run(twenty_sensors(args.sensors, args.seconds, args.idle_seconds)),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
