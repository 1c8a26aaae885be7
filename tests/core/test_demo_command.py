"""`gateway demo` as a newcomer runs it: zero set-up, readings from every simulated device
family, Ctrl-C stops the gateway and its simulated peers."""

import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from gateway.openssl_free import mapped_openssl_libraries


def stored_points(db_path):
    if not db_path.exists():
        return set()
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return {
            row[0]
            for row in conn.execute("SELECT DISTINCT p.name FROM readings r JOIN points p ON p.id = r.point")
        }
    except sqlite3.OperationalError:
        return set()
    finally:
        conn.close()


#: extension modules of what the demo gateway never imports: bz2 and lzma come with shutil,
#: tempfile and zipfile, decimal with statistics (gpiozero's smoothed inputs)
NEVER_MAPPED = ("_bz2", "_lzma", "_decimal")


def mapped_extensions(pid: int, names: tuple[str, ...]) -> list[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return sorted(n for n in names if re.search(rf"/{n}\.[^/]*\.so$", maps, re.MULTILINE))


def peers_running(demo_dir) -> bool:
    found = subprocess.run(["pgrep", "-f", f"gateway.demo.peers {demo_dir}"], capture_output=True)
    return found.returncode == 0


def test_demo_runs_every_family_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wanted = {
        "lamp-1/level",
        "carpark/occupied",
        "air/pm2_5",
        "cabinet-meter/voltage_l1",
        "bay-lora/presence_1",
        "cabinet-io/door_closed",
    }
    try:
        deadline = time.monotonic() + 90
        while not wanted <= stored_points(tmp_path / "data" / "buffer.db"):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, wanted - stored_points(tmp_path / "data" / "buffer.db")
            time.sleep(0.5)
        assert peers_running(tmp_path)
        # every family runs, and the gateway never maps the system's OpenSSL (its LoRaWAN
        # and OSCORE crypto is cryptography's own build of it)
        assert mapped_openssl_libraries(proc.pid) == []
        assert mapped_extensions(proc.pid, NEVER_MAPPED) == []
        assert mapped_extensions(proc.pid, ("_sqlite3",)) == ["_sqlite3"]  # the check sees them
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "demo site 'Demo street cabinet'" in out
    assert "CoAP API: coap://127.0.0.1:" in out
    assert "lamp-1/level" in out
    assert not peers_running(tmp_path)
