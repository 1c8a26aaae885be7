"""Two gateway sites on loopback: B serves a loop detector and a lamp over its CoAP API, A
observes B through the coap driver and drives B's lamp (and its own) from a rule."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GATEWAY_ID = "01"  # B's OSCORE id
A_ID = "0a"  # A's id, as B's client "cabinet-a"
TESTER_ID = "02"  # the test's own control client on B
SECRET = "000102030405060708090a0b0c0d0e0f"
WRONG_SECRET = "0f0e0d0c0b0a09080706050403020100"
SALT = "9e7ca92223786340"
STALE_AFTER = 2.0  # A's rules: silence of an input before the fail-safe
MAX_AGE_CAP = 1.5  # A's coap device: a silent B is noticed after this (+ grace)

B_SITE = """
[gateway]
id = "cabinet-b"
data_dir = "data"

[store]
flush_interval = "20ms"

# stands in for the loop detector: the test sets it through B's API, B publishes it every poll
[[devices]]
name = "loop"
driver = "simulated"
interval = "{interval}"
[devices.options]
profile = "custom"
[[devices.options.points]]
name = "occupied"
kind = "bool"
writable = true

[[devices]]
name = "lamp"
driver = "simulated"
interval = "{interval}"
[devices.options]
profile = "streetlight"

[actuators."lamp/level"]      # B's own limits hold for A's writes too
min = 0
max = 90

[api]
bind = "127.0.0.1"
port = {port}
credentials = "api-credentials.toml"
public = ["discovery"]
[api.clients]
cabinet-a = "control"
tester = "control"
"""

A_SITE = """
[gateway]
id = "cabinet-a"
data_dir = "data"

[store]
flush_interval = "20ms"

[[devices]]
name = "cabinet-b"
driver = "coap"
[devices.options]
peer = "gateway"
uri = "coap://127.0.0.1:{port}"
security = "oscore"
credentials_file = "peers.toml"
credentials = "cabinet-b"
observe = {observe}
max_age_cap = "{max_age_cap}s"
freshness_grace = "200ms"
retry_min = "100ms"
retry_max = "1s"
timeout = "2s"
[[devices.options.points]]
name = "loop/occupied"
kind = "bool"
[[devices.options.points]]
name = "lamp/level"
unit = "%"
writable = true

[[devices]]
name = "lamp-a"
driver = "simulated"
interval = "100ms"
[devices.options]
profile = "streetlight"

[rules]
directory = "rules"
reload_interval = "1s"
stale_after = "{stale_after}s"

[actuators."lamp-a/level"]
fail_safe = 100
[actuators."cabinet-b/lamp/level"]
fail_safe = 90
"""

A_RULES = """
[[rule]]
name = "brighten-ahead"
condition = "cabinet-b/loop/occupied == true"
[[rule.action]]
set = "cabinet-b/lamp/level"
value = 80
[[rule.action]]
set = "lamp-a/level"
value = 80

[[rule]]
name = "dim-when-empty"
condition = "cabinet-b/loop/occupied == false"
[[rule.action]]
set = "cabinet-b/lamp/level"
value = 20
[[rule.action]]
set = "lamp-a/level"
value = 20
"""


def oscore_entry(name: str, sender: str, recipient: str, secret: str = SECRET) -> str:
    return (
        f'[{name}.oscore]\nsender_id = "{sender}"\nrecipient_id = "{recipient}"\n'
        f'master_secret = "{secret}"\nmaster_salt = "{SALT}"\n'
    )


def write_private(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o600)


def write_b(directory: Path, port: int, interval: str = "50ms") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_private(
        directory / "api-credentials.toml",
        oscore_entry("cabinet-a", GATEWAY_ID, A_ID) + oscore_entry("tester", GATEWAY_ID, TESTER_ID),
    )
    path = directory / "gateway.toml"
    path.write_text(B_SITE.format(port=port, interval=interval))
    return path


def write_a(
    directory: Path,
    port: int,
    *,
    secret: str = SECRET,
    rules: str | None = A_RULES,
    observe: str = '["loop/*", "lamp/*"]',
    extra: str = "",
    max_age_cap: float = MAX_AGE_CAP,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_private(directory / "peers.toml", oscore_entry("cabinet-b", A_ID, GATEWAY_ID, secret))
    (directory / "rules").mkdir(exist_ok=True)
    if rules is not None:  # None: an empty rules directory (writes come from elsewhere)
        (directory / "rules" / "ahead.toml").write_text(rules)
    path = directory / "gateway.toml"
    path.write_text(
        A_SITE.format(port=port, observe=observe, max_age_cap=max_age_cap, stale_after=STALE_AFTER) + extra
    )
    return path


def control_client_oscore_dir(directory: Path) -> Path:
    path = directory / "tester-oscore"
    path.mkdir(parents=True, exist_ok=True)
    (path / "settings.json").write_text(
        json.dumps(
            {
                "sender-id_hex": TESTER_ID,
                "recipient-id_hex": GATEWAY_ID,
                "secret_hex": SECRET,
                "salt_hex": SALT,
            }
        )
    )
    return path


@dataclass
class Daemon:
    config: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def db(self) -> Path:
        return self.config.parent / "data" / "buffer.db"

    @property
    def log(self) -> Path:
        return self.config.parent / "daemon.log"

    def start(self) -> None:
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(self.config)], stdout=log, stderr=log
        )
        log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def readings(self, point: str, since_ms: int = 0) -> list[tuple[int, Any]]:
        return [
            (int(ts), value)
            for ts, value in self.rows(
                "SELECT ts_ms, value FROM readings_view WHERE point = ? AND ts_ms >= ? ORDER BY seq",
                point,
                since_ms,
            )
        ]

    def actuations(self, since_ms: int = 0) -> list[dict[str, Any]]:
        return [json.loads(v) for (_, v) in self.readings("events/actuation", since_ms)]

    def latest(self, point: str) -> Any:
        rows = self.readings(point)
        return rows[-1][1] if rows else None
