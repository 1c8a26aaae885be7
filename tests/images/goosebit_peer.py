"""goosebit (a hawkBit DDI server on PyPI) on loopback for the fleet tests, driven like an operator
drives it: its own venv (.goosebit-venv, made by tests/run), `aerich upgrade`, uvicorn, the
/setup + /login token, PUT /api/v1/software (a bundle), PUT /api/v1/rollouts, GET devices.

Also the city's flaky network between the boxes and the server: a loopback TCP proxy that can
cut or slow a box's artifact download, and records each download request it carried.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".goosebit-venv"


def missing() -> str | None:
    if not (VENV / "bin/uvicorn").exists() or not (VENV / "bin/aerich").exists():
        return (
            f"goosebit is not installed in {VENV} (tests/run makes it: python3 -m venv .goosebit-venv && "
            ".goosebit-venv/bin/pip install goosebit==0.2.12)"
        )
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Goosebit:
    root: Path
    poll_time: str = "00:00:01"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "goosebit.log"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GOOSEBIT_DB_URI": f"sqlite://{self.root / 'db.sqlite3'}",
            "GOOSEBIT_ARTIFACTS_DIR": str(self.root / "artifacts"),
            "GOOSEBIT_POLL_TIME": self.poll_time,
            "GOOSEBIT_SECRET_KEY": secrets.token_hex(32),
            # goosebit's dictConfig would otherwise switch off uvicorn's access log
            "GOOSEBIT_LOGGING": json.dumps(
                {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
            ),
            "PYTHONPATH": "",
        }

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        site = next((VENV / "lib").glob("python3*/site-packages"))
        (self.root / "pyproject.toml").write_text(
            '[tool.aerich]\ntortoise_orm = "goosebit.db.config.TORTOISE_CONF"\n'
            f'location = "{site}/goosebit/db/migrations"\n'
        )
        done = subprocess.run(
            [str(VENV / "bin/aerich"), "upgrade"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"aerich upgrade failed: {done.stdout}{done.stderr}"
        self.process = subprocess.Popen(
            [
                str(VENV / "bin/uvicorn"),
                "goosebit:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--access-log",
            ],
            cwd=self.root,
            env=self.env,
            stdout=open(self.log, "wb"),
            stderr=subprocess.STDOUT,
        )

        def up() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/login", timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(up, 120, "goosebit to answer")
        self.token = self._form(
            "/setup", {"username": "operator@city.example", "password": "a long passphrase"}
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # -- the operator's API -------------------------------------------------------------------

    def _form(self, path: str, fields: dict[str, str]) -> str:
        body = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in fields.items()).encode()
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return str(json.loads(r.read())["access_token"])

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        if body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.loads(r.read())

    def upload(self, bundle: Path) -> int:
        boundary = "----gateway" + secrets.token_hex(8)
        data = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{bundle.name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + bundle.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return int(
            self.api(
                "PUT", "/api/v1/software", data=data, content_type=f"multipart/form-data; boundary={boundary}"
            )["id"]
        )

    def rollout(self, software_id: int, name: str, feed: str = "default") -> int:
        return int(
            self.api("PUT", "/api/v1/rollouts", {"name": name, "feed": feed, "software_id": software_id})[
                "id"
            ]
        )

    def devices(self) -> dict[str, dict[str, Any]]:
        return {d["id"]: d for d in self.api("GET", "/api/v1/devices")["devices"]}

    def device_log(self, device_id: str) -> str:
        return str(self.api("GET", f"/api/v1/devices/{device_id}/log")["log"] or "")

    def rollouts(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/v1/rollouts")["rollouts"])

    def access_log(self, device_id: str) -> list[tuple[str, int]]:
        """(request line, status) of each artifact download uvicorn logged for a device."""
        pattern = re.compile(
            rf'"(GET /DEFAULT/controller/v1/{re.escape(device_id)}/download[^"]*)" (\d{{3}})'
        )
        return [(m.group(1), int(m.group(2))) for m in pattern.finditer(self.log.read_text(errors="replace"))]


@dataclass
class Download:
    device: str
    range: str | None
    status: int
    bytes_sent: int
    cut: bool


@dataclass
class FlakyNetwork:
    """A loopback proxy in front of goosebit: ``cut_first`` devices lose their first download
    after ``cut_after`` bytes; ``slow`` devices receive artifacts at ``rate`` bytes/s;
    ``corrupt`` devices get one byte of each artifact flipped (a bad link or a bad cache)."""

    upstream: int
    cut_first: set[str] = field(default_factory=set)
    cut_after: int = 256 * 1024
    slow: set[str] = field(default_factory=set)
    rate: int = 512 * 1024
    corrupt: set[str] = field(default_factory=set)
    downloads: list[Download] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        text = head.decode("latin-1")
        match = re.match(r"[A-Z]+ /[^/]+/controller/v1/([^/ ]+)/download", text)
        device = match.group(1) if match else None
        rng = re.search(r"(?im)^range:\s*(.+?)\s*$", text)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        up_writer.write(head)
        await up_writer.drain()

        async def client_to_server() -> None:
            try:
                while chunk := await reader.read(65536):
                    up_writer.write(chunk)
                    await up_writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass

        upload = asyncio.ensure_future(client_to_server())
        record = None
        if device is not None:
            cut = device in self.cut_first and not any(d.device == device for d in self.downloads)
            record = Download(device, rng.group(1) if rng else None, 0, 0, cut)
            self.downloads.append(record)
        try:
            first = True
            while chunk := await up_reader.read(16384):
                if record is not None:
                    if first:
                        status = re.match(rb"HTTP/1\.[01] (\d{3})", chunk)
                        record.status = int(status.group(1)) if status else 0
                        first = False
                    if record.cut and record.bytes_sent + len(chunk) > self.cut_after:
                        writer.write(chunk[: self.cut_after - record.bytes_sent])
                        record.bytes_sent = self.cut_after
                        await writer.drain()
                        break
                    if device in self.corrupt and record.bytes_sent < 65536 <= record.bytes_sent + len(chunk):
                        at = 65536 - record.bytes_sent
                        chunk = chunk[:at] + bytes([chunk[at] ^ 0xFF]) + chunk[at + 1 :]
                    record.bytes_sent += len(chunk)
                    if device in self.slow:
                        await asyncio.sleep(len(chunk) / self.rate)
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            upload.cancel()
            for w in (writer, up_writer):
                w.close()
