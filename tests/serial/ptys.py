"""socat pseudo-terminal pairs standing in for a USB serial adapter, and the far end's I/O.

``dev`` is what the gateway opens (a symlink, like /dev/serial/by-id/...); the test talks on
``peer``. Stopping socat removes both links: the adapter has been unplugged.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

SOCAT = shutil.which("socat")
needs_socat = pytest.mark.skipif(SOCAT is None, reason="socat is not installed")


class PtyPair:
    def __init__(self, directory: Path, name: str = "ttyUSB-air"):
        self.dev = directory / name
        self.peer = directory / f"{name}.peer"
        self.log = directory / f"{name}.socat.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> PtyPair:
        assert SOCAT is not None
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [SOCAT, "-d", "-d", f"pty,raw,echo=0,link={self.dev}", f"pty,raw,echo=0,link={self.peer}"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while not (self.dev.exists() and self.peer.exists()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"socat did not create {self.dev}: {self.log.read_text(errors='replace')}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> PtyPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Peer:
    """The device side of a pty pair, driven from the test's event loop."""

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.received = bytearray()
        self._changed = asyncio.Event()
        self._handlers: list = []
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.received += data
        self._changed.set()
        for handler in self._handlers:
            handler(self, data)

    def on_data(self, handler) -> None:
        self._handlers.append(handler)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    async def write_slowly(self, data: bytes, chunk: int, pause: float = 0.005) -> None:
        """Dribble ``data`` so frames arrive split across many reads, as at 9600 baud."""
        for i in range(0, len(data), chunk):
            self.write(data[i : i + chunk])
            await asyncio.sleep(pause)

    async def wait_received(self, predicate, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(bytes(self.received)):
                self._changed.clear()
                await self._changed.wait()

    def close(self) -> None:
        if self.fd >= 0:
            asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
