"""Demo peer: a simulated PMS5003 on a socat pseudo-terminal, so `gateway demo` shows the serial driver.

When socat is not installed the peer yields ``serial_air_enabled = false`` and the device is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from .plantower import encode_data_frame

#: a real PMS5003 sends about once a second; the demo slows down so the console stays readable
FRAME_PERIOD = 5.0


def _words(pm2_5: float) -> list[int]:
    pm1, pm10 = pm2_5 * 0.7, pm2_5 * 1.4
    cf = 1.1  # CF=1 values read a little higher than atmospheric ones indoors
    counts = [round(pm2_5 * k) for k in (110, 33, 6, 0.9, 0.2, 0.05)]
    return [
        round(pm1 * cf),
        round(pm2_5 * cf),
        round(pm10 * cf),
        round(pm1),
        round(pm2_5),
        round(pm10),
        *counts,
    ]


async def _play(peer: Path) -> None:
    fd = os.open(peer, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    rng = random.Random(5003)
    pm2_5 = 12.0
    try:
        while True:
            pm2_5 = min(80.0, max(2.0, pm2_5 + rng.gauss(0, 1.5)))
            with contextlib.suppress(BlockingIOError, InterruptedError):
                os.write(fd, encode_data_frame(_words(pm2_5)))
            # The sensor's own commands (mode setting) are read and dropped, like a PMS in active mode.
            with contextlib.suppress(BlockingIOError, InterruptedError):
                os.read(fd, 256)
            await asyncio.sleep(FRAME_PERIOD)
    finally:
        os.close(fd)


async def _wait_for(paths: tuple[Path, ...], proc: asyncio.subprocess.Process, timeout: float = 5.0) -> bool:
    async with asyncio.timeout(timeout):
        while not all(p.exists() for p in paths):
            if proc.returncode is not None:
                return False
            await asyncio.sleep(0.02)
    return True


@contextlib.asynccontextmanager
async def pms5003_peer(demo_dir: Path) -> AsyncIterator[dict[str, str]]:
    socat = shutil.which("socat")
    if socat is None:
        yield {
            "serial_air_enabled": "false",
            "serial_air_port": "/dev/null",
            "announce": "serial air sensor skipped: install socat to simulate it",
        }
        return
    folder = demo_dir / "serial"
    folder.mkdir(parents=True, exist_ok=True)
    dev, peer = folder / "pms5003", folder / "pms5003.peer"
    proc = await asyncio.create_subprocess_exec(
        socat,
        f"pty,raw,echo=0,link={dev}",
        f"pty,raw,echo=0,link={peer}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    player: asyncio.Task[None] | None = None
    try:
        try:
            ready = await _wait_for((dev, peer), proc)
        except TimeoutError:
            ready = False
        if not ready:
            yield {
                "serial_air_enabled": "false",
                "serial_air_port": "/dev/null",
                "announce": "serial air sensor skipped: socat could not create a pseudo-terminal",
            }
            return
        player = asyncio.create_task(_play(peer), name="demo:pms5003")
        yield {
            "serial_air_enabled": "true",
            "serial_air_port": str(dev),
            "announce": f"serial PMS5003 simulated on {dev} (socat pty)",
        }
    finally:
        if player is not None:
            player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await player
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
