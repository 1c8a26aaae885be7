"""A broken rule file never keeps the gateway down: real `gateway run` processes, real restarts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from gateway.cli import main
from gateway.rules.accepted import FOLDER
from gateway.store import Database
from tests.core.test_daemon_process import start_daemon, wait_for

SITE = """
[gateway]
id = "cabinet"
data_dir = "data"

[store]
flush_interval = "20ms"

[[devices]]
name = "lamp-1"
driver = "simulated"
interval = "100ms"
[devices.options]
profile = "streetlight"

[[devices]]
name = "lamp-2"
driver = "simulated"
interval = "100ms"
[devices.options]
profile = "streetlight"

[rules]
directory = "rules"
reload_interval = "200ms"

[actuators."lamp-1/level"]
fail_safe = 77

[actuators."lamp-2/level"]
fail_safe = 66
"""

DIM = """
[[rule]]
name = "dim"
condition = "lamp-1/traffic >= 0"
[[rule.action]]
set = "lamp-1/level"
value = {value}
"""

#: the typo of the issue: a point that does not exist
BROKEN_DIM = DIM.replace("lamp-1/traffic >= 0", "lamp-1/trafic > 3")

NEVER_GOOD = """
[[rule]]
name = "second-lamp"
condition = "lamp-2/trafic > 3"
[[rule.action]]
set = "lamp-2/level"
value = 5
"""


def make_site(tmp_path: Path, files: dict[str, str]) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    for name, text in files.items():
        (rules / name).write_text(text)
    config = tmp_path / "gateway.toml"
    config.write_text(SITE)
    return config


def actuation_records(tmp_path: Path) -> list[dict]:
    path = tmp_path / "data" / "buffer.db"
    if not path.exists():
        return []
    db = Database(path, readonly=True)
    try:
        return [{**json.loads(r.value), "ts": r.ts} for r in db.history("events/actuation")]
    except Exception:  # noqa: BLE001 - the daemon may still be creating the schema
        return []
    finally:
        db.close()


def rule_events(tmp_path: Path) -> list[dict]:
    db = Database(tmp_path / "data" / "buffer.db", readonly=True)
    try:
        return [json.loads(r.value) for r in db.history("events/rules")]
    finally:
        db.close()


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err.decode()


def written(records: list[dict], point: str, value, source: str, after: float = 0.0) -> bool:
    return any(
        r["point"] == point
        and r["value"] == value
        and r["source"] == source
        and r["result"] == "written"
        and r["ts"] > after
        for r in records
    )


def test_restart_with_a_broken_rule_file_runs_its_last_accepted_version(tmp_path):
    config = make_site(tmp_path, {"dim.toml": DIM.format(value=42)})
    proc = start_daemon(config)
    try:
        wait_for(lambda: written(actuation_records(tmp_path), "lamp-1/level", 42, "rule:dim"))
    finally:
        log = stop(proc)
    assert proc.returncode == 0, log
    assert (tmp_path / "data" / FOLDER / "dim.toml").read_text() == DIM.format(value=42)
    first_run_end = max(r["ts"] for r in actuation_records(tmp_path))

    # an edit with a typo (and a new value it would write), then a power cut or a reboot
    (tmp_path / "rules" / "dim.toml").write_text(BROKEN_DIM.format(value=43))
    assert main(["check", "-c", str(config)]) == 1  # rule-file problems only: the unit starts
    proc = start_daemon(config)
    try:
        # the daemon runs, and the old version's rule drives the lamp again
        wait_for(
            lambda: written(actuation_records(tmp_path), "lamp-1/level", 42, "rule:dim", after=first_run_end)
        )
        assert proc.poll() is None
        wait_for(lambda: any(e.get("result") == "rejected" for e in rule_events(tmp_path)))
    finally:
        log = stop(proc)
    assert proc.returncode == 0, log
    assert "event=rules_rejected" in log and "outcome=accepted_copy_runs" in log, log
    assert "unknown point 'lamp-1/trafic'" in log and "dim.toml:4" in log, log
    assert "event=rules_accepted_copy_runs" in log
    assert not written(actuation_records(tmp_path), "lamp-1/level", 43, "rule:dim")
    rejected = next(e for e in rule_events(tmp_path) if e.get("result") == "rejected")
    assert rejected["outcome"] == {"dim.toml": "accepted_copy_runs"}
    # the accepted copy is still the good version, not the broken edit
    assert (tmp_path / "data" / FOLDER / "dim.toml").read_text() == DIM.format(value=42)


def test_broken_rule_file_without_accepted_version_is_skipped_and_its_actuators_fail_safe(tmp_path):
    config = make_site(tmp_path, {"dim.toml": DIM.format(value=42), "second.toml": NEVER_GOOD})
    proc = start_daemon(config)
    try:
        wait_for(lambda: written(actuation_records(tmp_path), "lamp-2/level", 66, "failsafe:second.toml"))
        wait_for(lambda: written(actuation_records(tmp_path), "lamp-1/level", 42, "rule:dim"))
        assert proc.poll() is None
    finally:
        log = stop(proc)
    assert proc.returncode == 0, log
    assert "file=" in log and "second.toml outcome=skipped_failsafe" in log, log
    assert "event=rule_failsafe rule=second.toml point=lamp-2/level value=66" in log
    assert not (tmp_path / "data" / FOLDER / "second.toml").exists()


def test_a_site_config_problem_still_stops_the_daemon(tmp_path):
    config = make_site(tmp_path, {"dim.toml": BROKEN_DIM.format(value=1)})
    config.write_text(SITE.replace('profile = "streetlight"', 'profile = "streetlite"', 1))
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "streetlite" in proc.stderr
    # the rule-file problem is listed too, apart from the site-config problem
    assert "found in rule files" in proc.stderr and "lamp-1/trafic" in proc.stderr
    assert main(["check", "-c", str(config)]) == 2
