"""The daemon as a real process: kill -9 mid-ingest, SIGTERM shutdown, systemd notify."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from gateway.store import Database

HIGH_RATE_SITE = """
[gateway]
id = "crash-site"
data_dir = "data"

[store]
flush_interval = "5ms"
flush_readings = 200

[[devices]]
name = "fast"
driver = "simulated"
interval = "10ms"
[devices.options]
profile = "custom"
{points}
"""


def write_site(tmp_path: Path, points: int = 50) -> Path:
    body = "\n".join(
        f'[[devices.options.points]]\nname = "p{i}"\nwaveform = "counter"' for i in range(points)
    )
    path = tmp_path / "gateway.toml"
    path.write_text(HIGH_RATE_SITE.format(points=body))
    return path


def start_daemon(config: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def committed(db_path: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT seq, point, ts, value FROM readings ORDER BY seq").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_kill_9_mid_ingest_loses_no_committed_reading(tmp_path):
    config = write_site(tmp_path)
    db_path = tmp_path / "data" / "buffer.db"
    proc = start_daemon(config)
    try:
        wait_for(lambda: db_path.exists() and len(committed(db_path)) > 3000)
        snapshot = committed(db_path)  # what any reader saw committed before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    db = Database(db_path)  # opens read-write: recovers the WAL like a restart would
    assert db.integrity_ok()
    after = db.conn.execute(
        "SELECT seq, point, ts, value FROM readings WHERE seq <= ? ORDER BY seq", (snapshot[-1][0],)
    ).fetchall()
    assert after == snapshot
    db.close()
    # and the gateway starts again on the recovered buffer, continuing the sequence
    proc = start_daemon(config)
    try:
        wait_for(lambda: committed(db_path)[-1][0] > snapshot[-1][0] + 100)
    finally:
        proc.terminate()
        proc.wait(10)


def test_sigterm_flushes_and_exits_cleanly(tmp_path):
    config = write_site(tmp_path, points=5)
    db_path = tmp_path / "data" / "buffer.db"
    proc = start_daemon(config)
    try:
        wait_for(lambda: db_path.exists() and len(committed(db_path)) > 50)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    log = err.decode()
    assert "event=stopping" in log and "event=stopped" in log
    last_seq = int(log.split("event=stopped last_seq=")[1].split()[0])
    assert committed(db_path)[-1][0] == last_seq
    # a clean shutdown checkpoints the WAL into the main file
    wal = db_path.with_name("buffer.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_systemd_notify_ready_status_and_watchdog(tmp_path):
    config = write_site(tmp_path, points=2)
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(20)
    proc = start_daemon(config, {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "600000"})
    messages = []
    try:
        while not any("WATCHDOG=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        sock.settimeout(2)
        try:
            while True:
                messages.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    ready = next(m for m in messages if "READY=1" in m)
    assert "STATUS=" in ready and "devices online" in "".join(messages)
    assert messages.index(ready) < next(i for i, m in enumerate(messages) if "WATCHDOG=1" in m)
    assert any("STOPPING=1" in m for m in messages)


def test_run_refuses_invalid_config(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nid = "x"\n[[devices]]\nname = "a"\ndriver = "nope"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "devices[0].driver: unknown driver 'nope'" in proc.stderr
