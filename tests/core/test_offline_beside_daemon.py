"""``gateway readings --follow`` and ``gateway export`` as separate processes beside a running
daemon: what they print is exactly what the daemon committed."""

import csv
import datetime as dt
import io
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zoneinfo
from pathlib import Path

import pytest

from tests.core.test_daemon_process import wait_for

SITE = """
[gateway]
id = "offline-site"
data_dir = "data"
timezone = "Europe/Amsterdam"

[store]
flush_interval = "5ms"

[[devices]]
name = "fast"
driver = "simulated"
interval = "20ms"
[devices.options]
profile = "custom"
[[devices.options.points]]
name = "p1"
waveform = "sine"
period = "3s"
[[devices.options.points]]
name = "p2"
waveform = "random_walk"
[[devices.options.points]]
name = "q1"
waveform = "counter"
[[devices.options.points]]
name = "door"
waveform = "toggle"
kind = "bool"
"""

OFFSET_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0[12]:00$")
ZONE = zoneinfo.ZoneInfo("Europe/Amsterdam")


def gateway(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.fixture
def daemon(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text(SITE)
    db_path = tmp_path / "data" / "buffer.db"
    proc = gateway("run", "--config", str(config))
    try:
        wait_for(lambda: len(committed(db_path)) > 40 or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()[1]
        yield config, db_path, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def committed(db_path: Path) -> list[tuple]:
    if not db_path.exists():
        return []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT r.seq, p.name, r.ts, r.value, r.flags FROM readings r "
            "JOIN points p ON p.id = r.point ORDER BY r.seq"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def lines_of(proc: subprocess.Popen) -> queue.Queue:
    """Lines of ``proc``'s stdout as they come, without ever blocking the test on a read."""
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def as_value(value, flags):
    return bool(value) if flags & 8 else value


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_follow_prints_every_new_reading_of_the_matching_points_as_committed(daemon, stop_signal):
    config, db_path, proc = daemon
    follower = gateway("readings", "--config", str(config), "--follow", "--json", "fast/p*")
    try:
        lines = lines_of(follower)
        printed = []
        deadline = time.monotonic() + 60
        while len(printed) < 80:
            assert time.monotonic() < deadline, printed
            try:
                printed.append(json.loads(lines.get(timeout=1)))
            except queue.Empty:
                assert follower.poll() is None, follower.stderr.read()
        follower.send_signal(stop_signal)
        follower.wait(10)
        assert follower.returncode == 0, follower.stderr.read()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert proc.poll() is None  # the daemon ran all along
    stop(proc)
    rest = follower.stdout.read()  # whatever the pump had not taken yet
    assert rest == "" or all(json.loads(line) for line in rest.splitlines())

    # first the latest reading of each matching point, then every one committed after them
    latest, new = printed[:2], printed[2:]
    assert sorted(r["point"] for r in latest) == ["fast/p1", "fast/p2"]
    seqs = [r["seq"] for r in new]
    assert seqs == sorted(set(seqs)) and seqs[0] > max(r["seq"] for r in latest)
    expected = [
        (seq, name, value, flags)
        for seq, name, _, value, flags in committed(db_path)
        if name.startswith("fast/p") and seqs[0] <= seq <= seqs[-1]
    ]
    assert [(r["seq"], r["point"], r["value"]) for r in new] == [
        (seq, name, as_value(value, flags)) for seq, name, value, flags in expected
    ]
    assert all(OFFSET_TIME.match(r["ts"]) for r in printed)


def site_time(ts_ms: int) -> str:
    """An ISO time without offset, in the site's zone: what a technician types."""
    return (
        dt.datetime.fromtimestamp(ts_ms / 1000, ZONE).replace(tzinfo=None).isoformat(timespec="milliseconds")
    )


def test_export_beside_the_daemon_is_every_reading_in_range_once_in_order_exact(daemon, tmp_path):
    config, db_path, proc = daemon
    wait_for(lambda: len(committed(db_path)) > 400)
    rows = committed(db_path)
    start_ms = rows[30][2]
    end_ms = int(time.time() * 1000) - 1000  # everything stamped before this is committed by now
    wait_for(lambda: committed(db_path)[-1][2] > end_ms + 200)
    exports = {}
    for fmt in ("ndjson", "json", "csv"):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "export",
                "--config",
                str(config),
                "--since",
                site_time(start_ms),
                "--until",
                site_time(end_ms),
                "--format",
                fmt,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        exports[fmt] = run.stdout
    exported_file = tmp_path / "range.csv"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "export",
            "--config",
            str(config),
            "--since",
            site_time(start_ms),
            "--until",
            site_time(end_ms),
            "-o",
            str(exported_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert f"into {exported_file}" in run.stderr
    assert proc.poll() is None  # exported while the daemon kept committing
    stop(proc)

    in_range = sorted(
        (r for r in committed(db_path) if start_ms <= r[2] < end_ms), key=lambda r: (r[2], r[0])
    )
    assert len(in_range) > 100
    assert {type(as_value(r[3], r[4])) for r in in_range} >= {bool, float}
    expected = [(seq, name, as_value(value, flags)) for seq, name, _, value, flags in in_range]
    as_lines = [json.loads(line) for line in exports["ndjson"].splitlines()]
    assert [(r["seq"], r["point"], r["value"]) for r in as_lines] == expected
    assert [(r["seq"], r["point"], r["value"]) for r in json.loads(exports["json"])] == expected
    times = [dt.datetime.fromisoformat(r["ts"]).timestamp() for r in as_lines]
    assert [round(t * 1000) for t in times] == [r[2] for r in in_range]
    assert all(OFFSET_TIME.match(r["ts"]) for r in as_lines)
    table = list(csv.DictReader(io.StringIO(exports["csv"])))
    assert table == list(csv.DictReader(io.StringIO(exported_file.read_text())))
    assert [(int(r["seq"]), r["point"]) for r in table] == [(seq, name) for seq, name, _ in expected]
    for row, (_, _, value) in zip(table, expected, strict=True):
        if isinstance(value, bool):
            assert row["value"] == str(value).lower()
        else:
            assert type(value)(row["value"]) == value  # exact: the same double reads back


def test_export_of_a_misspelt_point_writes_nothing_and_says_so(daemon):
    config, _, _ = daemon
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "export", "--config", str(config), "fast/p3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1 and run.stdout == ""
    assert "no point 'fast/p3' in the buffer or the config (did you mean" in run.stderr


def test_the_daemon_never_imports_sqlite_utils(tmp_path):
    """sqlite-utils is for the offline tools; `gateway run` must not pay for it in memory."""
    config = tmp_path / "gateway.toml"
    config.write_text(SITE)
    db_path = tmp_path / "data" / "buffer.db"
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "gateway", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        wait_for(lambda: len(committed(db_path)) > 20 or proc.poll() is not None)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:")
    }
    assert "gateway.service" in imported and "gateway.store.database" in imported  # the check sees imports
    assert not {name for name in imported if name.split(".")[0] == "sqlite_utils"}


def test_the_cli_imports_sqlite_utils_only_inside_export(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    script = f"""
import sys
import gateway.cli, gateway.cli.run, gateway.service
gateway.cli.build_parser()
before = 'sqlite_utils' in sys.modules
from gateway.store import Database
Database({str(data / "buffer.db")!r}).close()
gateway.cli.main(['export', '--data-dir', {str(data)!r}])
print(before, 'sqlite_utils' in sys.modules)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "False True"
