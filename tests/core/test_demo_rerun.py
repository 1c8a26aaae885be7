"""`gateway demo` run twice in one demo dir, as a technician trying it out would: an edited rule
file survives the re-run, the LoRaWAN sensor is not refused as stale, the commands the demo
prints run as printed, and `--reset` restores the rule templates and says so."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

EDIT = "\n# dimmer after midnight, agreed with the council\n"


def stored_count(db_path: Path, point: str) -> int:
    if not db_path.exists():
        return 0
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return int(
            conn.execute(
                "SELECT COUNT(*) FROM readings r JOIN points p ON p.id = r.point WHERE p.name = ?", (point,)
            ).fetchone()[0]
        )
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


class DemoRun:
    def __init__(self, demo_dir: Path, logs: Path, *extra: str):
        self.out_path, self.err_path = logs.with_suffix(".out"), logs.with_suffix(".err")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "demo", "--data-dir", str(demo_dir), "--quiet", *extra],
                stdout=out,
                stderr=err,
            )

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, f"demo exited early:\n{self.out}\n{self.err}"
            assert time.monotonic() < deadline, (
                f"condition not met within {timeout}s:\n{self.out}\n{self.err}"
            )
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(40)  # past the stop guard (21 s), which prints where a stop hung
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def demo(demo_dir: Path, logs: Path, *extra: str) -> Iterator[DemoRun]:
    run = DemoRun(demo_dir, logs, *extra)
    try:
        run.wait_for(lambda: "Ctrl-C to stop" in run.out)
        yield run
    finally:
        run.stop()
    assert run.proc.returncode == 0, run.err


def printed(out: str, marker: str) -> str:
    """The command on the line that starts with (or contains) ``marker``, as printed."""
    line = next(line for line in out.splitlines() if marker in line)
    return line.split(marker, 1)[1].strip()


def run_printed(command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=timeout)


def test_rerun_keeps_edits_and_the_lorawan_counter_and_prints_working_commands(tmp_path):
    demo_dir = tmp_path / "demo"
    db = demo_dir / "data" / "buffer.db"
    with demo(demo_dir, tmp_path / "first") as first:
        # two uplinks accepted: the network server now holds a counter above 0
        first.wait_for(lambda: stored_count(db, "bay-lora/presence_1") >= 2)
    lora_after_first = stored_count(db, "bay-lora/presence_1")

    rule_file = demo_dir / "rules" / "street_lighting.toml"
    rule_file.write_text(rule_file.read_text() + EDIT)

    with demo(demo_dir, tmp_path / "second") as second:
        second.wait_for(lambda: stored_count(db, "bay-lora/presence_1") >= lora_after_first + 2)
        out = second.out

        # every absolute path of an executable it prints exists (the venv's, next to this Python)
        tools = {
            Path(word)
            for line in out.splitlines()
            for word in shlex.split(line.replace("'", ""))
            if word.startswith("/") and Path(word).name in ("gateway", "aiocoap-client")
        }
        assert {t.name for t in tools} == {"gateway", "aiocoap-client"}, out
        assert all(t.is_file() and os.access(t, os.X_OK) for t in tools), tools
        assert {t.parent for t in tools} == {Path(sys.executable).parent}

        readings = run_printed(printed(out, "Query the buffer with:"))
        assert readings.returncode == 0, readings.stderr
        assert "bay-lora/presence_1" in readings.stdout

        discovery = run_printed(printed(out, " or ").rstrip(")"))
        assert discovery.returncode == 0 and "</points/carpark/occupied>" in discovery.stdout, (
            discovery.stderr
        )

        write = run_printed(printed(out, "write (OSCORE):"))
        assert write.returncode == 0, write.stdout + write.stderr

        if shutil.which("coap-client-notls"):
            live = printed(out, "live:")
            # stdbuf: see each notification as it comes, not when coap-client's buffer fills
            with subprocess.Popen(
                ["stdbuf", "-oL", *shlex.split(live)], stdout=subprocess.PIPE, text=True
            ) as watch:
                try:
                    assert watch.stdout is not None
                    values = [watch.stdout.readline() for _ in range(3)]
                finally:
                    watch.kill()
            assert all(re.fullmatch(r"\d+\n", v) for v in values), values  # one value per line

    assert "keeping your edited rule files" in out and "street_lighting.toml" in out
    assert rule_file.read_text().endswith(EDIT)
    assert "reason=stale" not in second.err and "uplink_refused" not in second.err, second.err

    with demo(demo_dir, tmp_path / "reset", "--reset") as reset:
        assert (
            f"--reset: rule files rewritten from the templates in {demo_dir / 'rules'}: street_lighting.toml"
            in reset.out
        )
    assert not rule_file.read_text().endswith(EDIT)


@pytest.fixture(autouse=True)
def _no_stray_peers(tmp_path):
    yield
    found = subprocess.run(["pgrep", "-f", f"gateway.demo.peers {tmp_path}"], capture_output=True)
    assert found.returncode != 0, "the demo's peers outlived it"
