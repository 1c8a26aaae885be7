"""`gateway status` against a real `gateway run` process, through every state a technician meets.

Real peers: a pymodbus TCP server (the meter), a socat pty pair with PMS5003 frames (a push
device), an aiocoap receiver (the upstream), rule files on disk; "the store cannot commit" is a
``sitecustomize`` that fails every commit while a flag file exists, as a dying card does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pymodbus.server import ModbusTcpServer

from tests.coap_uplink.receiver import Receiver, free_udp_port
from tests.modbus.peers import free_port, sim_device
from tests.rules.test_broken_rules_process import BROKEN_DIM, DIM
from tests.serial.frames import pms_frame
from tests.serial.ptys import Peer, PtyPair, needs_socat

SITE = """
[gateway]
id = "cabinet-7"
name = "Main St cabinet"
timezone = "Europe/Amsterdam"
data_dir = "data"

[store]
flush_interval = "20ms"
retention_interval = "1s"

[[devices]]
name = "lamp-1"
driver = "simulated"
interval = "200ms"
[devices.options]
profile = "streetlight"

[[devices]]
name = "meter-1"
driver = "modbus"
interval = "200ms"
[devices.options]
profile = "energy_meter"
transport = "tcp"
host = "127.0.0.1"
port = {modbus_port}
timeout = "200ms"
backoff_max = "1s"

[[devices]]
name = "air-1"
driver = "serial"
stale_after = "1500ms"
[devices.options]
port = "{serial_port}"
protocol = "pms5003"
reconnect_min = "100ms"
reconnect_max = "500ms"

[rules]
directory = "rules"
reload_interval = "200ms"

[actuators."lamp-1/level"]
fail_safe = 77

[[upstreams]]
name = "cloud"
uri = "coap://127.0.0.1:{coap_port}/ingest"
retry_min = "100ms"
retry_max = "500ms"
timeout = "2s"
"""

#: every commit fails with the card's own words while the flag file exists
FAILING_COMMITS = """
import os, sqlite3
from pathlib import Path
import gateway.store.database as database

_real_insert = database.Database.insert
_flag = Path(os.environ["GATEWAY_TEST_COMMIT_FAILS"])

def _insert(self, batch, **kwargs):
    if _flag.exists():
        raise sqlite3.OperationalError("disk I/O error")
    return _real_insert(self, batch, **kwargs)

database.Database.insert = _insert
"""


@contextlib.asynccontextmanager
async def modbus_meter(port: int) -> AsyncIterator[None]:
    """The meter: a pymodbus server on a fixed port, so "plugging it back in" finds it."""
    server = ModbusTcpServer([sim_device(1)], address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    try:
        yield
    finally:
        await server.shutdown()


class Daemon:
    def __init__(self, tmp_path: Path, config: Path, env: dict[str, str]):
        self.tmp_path = tmp_path
        self.config = config
        self.env = env
        self.log = tmp_path / "daemon.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway",
                "run",
                "--config",
                str(self.config),
                stdout=log,
                stderr=log,
                env={**os.environ, **self.env},
            )

    async def status(self, *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "status",
            "--config",
            str(self.config),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    async def wait_status(
        self, accept: Callable[[int, str], bool], timeout: float = 60.0, args: tuple[str, ...] = ()
    ) -> tuple[int, str]:
        """The first `gateway status` answer ``accept`` takes; fails with the last one seen."""
        last: tuple[int, str] = (-1, "")
        try:
            async with asyncio.timeout(timeout):
                while True:
                    last = await self.status(*args)
                    if accept(*last):
                        return last
                    await asyncio.sleep(0.3)
        except TimeoutError:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise AssertionError(
                f"status never reached the state; last exit {last[0]}:\n{last[1]}\n--- daemon log ---\n{tail}"
            ) from None

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


#: a time as `gateway status` prints it: today's, or another day's (a test may span midnight)
TIME = r"(\d\d-\d\d \d\d:\d\d|\d\d:\d\d:\d\d)[+-]\d\d:\d\d"


def row(out: str, name: str) -> str:
    """The table row of one device or upstream."""
    return next((line for line in out.splitlines() if line.startswith(name + " ")), "")


def healthy(code: int, out: str) -> bool:
    return code == 0 and all(
        re.match(rf"{name}\s+\S+\s+online\s", row(out, name)) for name in ("lamp-1", "meter-1", "air-1")
    )


def flat(out: str) -> str:
    """The text with its line wrapping undone, for sentences the table wraps at 80 columns."""
    return " ".join(out.split())


def degraded_because(reason: str) -> Callable[[int, str], bool]:
    return lambda code, out: code == 1 and "STATUS: DEGRADED" in out and reason in flat(out)


def fits_80_columns(out: str) -> bool:
    return all(len(line) <= 80 for line in out.splitlines())


def make_site(tmp_path: Path, pair: PtyPair, modbus_port: int, coap_port: int) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "dim.toml").write_text(DIM.format(value=40))
    config = tmp_path / "gateway.toml"
    config.write_text(SITE.format(modbus_port=modbus_port, serial_port=pair.dev, coap_port=coap_port))
    return config


@needs_socat
def test_status_tells_each_state_of_a_running_daemon(tmp_path):
    pair = PtyPair(tmp_path).start()
    modbus_port, coap_port = free_port(), free_udp_port()
    config = make_site(tmp_path, pair, modbus_port, coap_port)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAILING_COMMITS)
    commit_fails = tmp_path / "commit-fails"
    daemon = Daemon(
        tmp_path,
        config,
        {
            "PYTHONPATH": f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "GATEWAY_TEST_COMMIT_FAILS": str(commit_fails),
        },
    )

    async def scenario() -> None:
        peer = Peer(pair.peer)
        sending = asyncio.Event()
        sending.set()

        async def air_sensor() -> None:  # a PMS5003 talks about once a second; faster here
            i = 0
            while True:
                await sending.wait()
                i += 1
                peer.write(pms_frame(i))
                await asyncio.sleep(0.2)

        sensor = asyncio.create_task(air_sensor())
        receiver = Receiver(coap_port)
        meter = modbus_meter(modbus_port)
        await receiver.__aenter__()
        await meter.__aenter__()
        try:
            code, out = await daemon.status()
            assert code == 2 and "NOT RUNNING" in out, out  # before the daemon starts

            await daemon.start()
            code, out = await daemon.wait_status(healthy)
            assert "STATUS: OK" in out and fits_80_columns(out), out
            assert out.count("clock") == 1, out  # synced or not, said once
            assert re.search(r"times in Europe/Amsterdam \(\+0[12]:00\)", out), out
            assert re.search(rf"^cloud\s+\S.*\s+\d+ rdg / \d+ s\s+{TIME}", out, re.M), out
            assert re.search(r"dim\.toml\s+1 rule\s+loaded", out), out
            assert re.search(
                r"\d h of buffer left before unforwarded readings would be dropped", flat(out)
            ), out
            # the JSON form of the same healthy state (a loaded machine can make a device late
            # for a moment between two calls: wait for it as for the text)
            code, text = await daemon.wait_status(lambda c, s: c == 0, args=("--json",))
            snapshot = json.loads(text)
            assert code == 0 and snapshot["running"] and snapshot["status"] == "ok", text
            # push devices count: serial readings set last_reading_at like polled ones
            assert snapshot["health"]["devices"]["air-1"]["last_reading_at"] is not None
            code, out = await daemon.status("--utc")
            assert re.search(r"times in UTC(, clock synced| \(clock not synced\))\n", out), out
            print(out)  # the pasted example of a healthy cabinet

            # an override a technician set beside the daemon is listed, and is not a fault
            override = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway",
                "override",
                "lamp-1/level",
                "90",
                "--for",
                "30m",
                "--config",
                str(config),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            assert await override.wait() == 0
            code, out = await daemon.wait_status(lambda code, out: "lamp-1/level = 90" in out)
            assert code == 0 and re.search(rf"lamp-1/level = 90 until {TIME}", out), out

            # a rule file rejected, then fixed
            (tmp_path / "rules" / "dim.toml").write_text(BROKEN_DIM.format(value=40))
            code, out = await daemon.wait_status(degraded_because("rule file dim.toml is rejected"))
            assert "lamp-1/trafic" in flat(out) and "dim.toml:" in out, out
            (tmp_path / "rules" / "dim.toml").write_text(DIM.format(value=40))
            await daemon.wait_status(healthy)

            # the upstream down, then back
            await receiver.__aexit__(None, None, None)
            code, out = await daemon.wait_status(degraded_because("upstream cloud is failing"))
            assert "connection refused" in flat(out) and "NetworkError" not in out, out
            assert re.search(r"^cloud\s+(retrying|sending)\s+\d+ rdg / ", out, re.M), out
            receiver = Receiver(coap_port)
            await receiver.__aenter__()
            await daemon.wait_status(healthy)

            # the push device silent, then talking again
            sending.clear()
            code, out = await daemon.wait_status(degraded_because("device air-1 is stale: no reading for"))
            assert re.match(rf"air-1\s+serial\s+stale\s+{TIME}", row(out, "air-1")), out
            sending.set()
            await daemon.wait_status(healthy)

            # the store unable to commit, then the card answering again
            commit_fails.touch()
            code, out = await daemon.wait_status(degraded_because("the buffer cannot commit: disk I/O error"))
            commit_fails.unlink()
            await daemon.wait_status(healthy)

            # the meter unplugged (its server stopped)
            await meter.__aexit__(None, None, None)
            meter = None
            code, out = await daemon.wait_status(degraded_because("device meter-1 is offline"))
            assert re.match(r"meter-1\s+modbus\s+offline", row(out, "meter-1")), out
            assert "cannot connect" in flat(out) and fits_80_columns(out), out
            print(out)  # the pasted example of a degraded cabinet

            # a stopped daemon is "not running" at once, not a stale "ok"
            await daemon.stop()
            code, out = await daemon.status()
            assert code == 2 and "NOT RUNNING" in out and "daemon is not running" in out, out
        finally:
            sensor.cancel()
            await daemon.stop()
            if meter is not None:
                await meter.__aexit__(None, None, None)
            await receiver.__aexit__(None, None, None)
            peer.close()

    try:
        asyncio.run(scenario())
    finally:
        pair.stop()


SIMPLE_SITE = """
[gateway]
id = "cabinet-8"
data_dir = "data"

[[devices]]
name = "lamp-1"
driver = "simulated"
interval = "200ms"
[devices.options]
profile = "streetlight"
"""


def test_status_after_kill_9_says_not_running(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text(SIMPLE_SITE)
    daemon = Daemon(tmp_path, config, {})

    async def scenario() -> None:
        await daemon.start()
        try:
            code, out = await daemon.wait_status(lambda code, out: code == 0)
            assert "STATUS: OK" in out and "(no upstreams configured)" in out, out
            assert daemon.proc is not None
            daemon.proc.kill()  # no shutdown: the snapshot stays behind
            await daemon.proc.wait()
            assert (tmp_path / "data" / "health.json").exists()
            code, out = await daemon.status()
            assert code == 2 and "has exited" in out, out
            code, text = await daemon.status("--json")
            assert code == 2 and json.loads(text)["running"] is False
        finally:
            await daemon.stop()

    asyncio.run(scenario())


def test_status_without_a_daemon_exits_2(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text(SIMPLE_SITE)
    from gateway.cli import main

    assert main(["status", "--config", str(config)]) == 2


def test_systemd_status_line_says_what_gateway_status_says(tmp_path):
    """STATUS= (what `systemctl status gateway` shows) comes from the same judgement."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        SIMPLE_SITE
        + f"""
[[upstreams]]
name = "cloud"
uri = "coap://127.0.0.1:{free_udp_port()}/ingest"
retry_min = "100ms"
retry_max = "300ms"
"""
    )
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.setblocking(False)
    daemon = Daemon(tmp_path, config, {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "600000"})

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        await daemon.start()
        try:
            code, out = await daemon.wait_status(degraded_because("upstream cloud is failing"))
            async with asyncio.timeout(60):
                while True:
                    message = (await loop.sock_recv(sock, 4096)).decode()
                    if "STATUS=degraded: upstream cloud is failing" in message:
                        break
            status = next(line for line in message.splitlines() if line.startswith("STATUS="))
            assert "connection refused" in status and status.endswith("readings stored"), status
            assert "1/1 devices online" in status, status
        finally:
            await daemon.stop()
            sock.close()

    asyncio.run(scenario())


def test_status_watch_refreshes_in_place_until_ctrl_c(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text(SIMPLE_SITE)

    async def scenario() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "status",
            "--config",
            str(config),
            "--watch",
            "0.2",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        seen = b""
        try:
            async with asyncio.timeout(60):
                while seen.count(b"\x1b[H\x1b[2J") < 2:  # cleared and redrawn, not scrolled
                    seen += await proc.stdout.read(4096)
            proc.send_signal(signal.SIGINT)
            rest, _ = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert b"NOT RUNNING" in seen and b"Traceback" not in seen + rest
        assert proc.returncode == 2  # Ctrl-C ends it with the last status it showed

    asyncio.run(scenario())


if __name__ == "__main__":
    pytest.main([__file__, "-s"])
