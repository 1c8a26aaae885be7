"""`gateway check` with rule files, and `gateway rules test FILE [--replay]`."""

from __future__ import annotations

import subprocess
import sys
import time

from gateway.cli import main
from gateway.model import Reading
from gateway.store.database import Database
from tests.rules.test_service import FOLLOW, HOLD

BROKEN = """
[[rule]]
name = "broken"
condition = "sensor/trafic > 3"
fore = "1m"
[[rule.action]]
set = "sensor/traffic"
value = 1
"""


def test_check_lists_every_rule_problem_and_fails(rules_site, tmp_path, capsys):
    rules_site({"follow.toml": FOLLOW})
    (tmp_path / "rules" / "broken.toml").write_text(BROKEN)
    assert main(["check", "-c", str(tmp_path / "gateway.toml")]) == 1
    err = capsys.readouterr().err
    assert "3 problems found" in err
    assert "broken.toml:4: rule[0].condition: rule 'broken': unknown point 'sensor/trafic'" in err
    assert "did you mean 'sensor/traffic'" in err
    assert "broken.toml:5: rule[0].fore: rule 'broken': unknown key 'fore' (did you mean 'for'?)" in err
    assert "broken.toml:7: rule[0].action[0].set: rule 'broken': 'sensor/traffic' is not writable" in err


def test_check_prints_the_rules_summary(rules_site, tmp_path, capsys):
    rules_site({"follow.toml": FOLLOW, "hold.toml": HOLD})
    assert main(["check", "-c", str(tmp_path / "gateway.toml")]) == 0
    assert "rules: 2 rules in 2 files" in capsys.readouterr().out


def test_rules_test_validates_a_file(rules_site, tmp_path, capsys):
    rules_site({"follow.toml": FOLLOW})
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(BROKEN)
    assert main(["rules", "test", str(candidate), "-c", str(tmp_path / "gateway.toml")]) == 1
    assert "unknown key 'fore'" in capsys.readouterr().err
    candidate.write_text(HOLD)
    assert main(["rules", "test", str(candidate), "-c", str(tmp_path / "gateway.toml")]) == 0
    out = capsys.readouterr().out
    assert "busy-street: change of sensor/traffic if sensor/traffic > 5 for 5m -> set lamp/level = 100" in out


def test_rules_test_replays_buffered_history_without_writing(rules_site, tmp_path, capsys):
    rules_site({"follow.toml": FOLLOW})
    now = time.time()
    data = tmp_path / "data"
    data.mkdir()
    db = Database(data / "buffer.db")
    db.insert(
        [
            Reading("sensor/traffic", 2, now - 3000),
            Reading("sensor/traffic", 8, now - 1500),  # > 5 from here: fires 5 minutes later
            Reading("sensor/traffic", 9, now - 1200),
            Reading("sensor/traffic", 1, now - 600),
            Reading("sensor/traffic", 7, now - 7200),  # outside the replayed hour
        ]
    )
    before = db.count()
    db.close()
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(HOLD)
    assert (
        main(["rules", "test", str(candidate), "--replay", "1h", "-c", str(tmp_path / "gateway.toml")]) == 0
    )
    out = capsys.readouterr().out
    assert "replayed 4 readings from the last 1h; 1 action would have fired (nothing was written)" in out
    fired = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 1500 + 300))
    assert f"{fired}Z busy-street set lamp/level 100" in out
    db = Database(data / "buffer.db", readonly=True)
    assert db.count() == before
    db.close()


def test_read_only_and_manual_commands_work_while_a_rule_file_is_broken(rules_site, tmp_path, capsys):
    rules_site({"follow.toml": FOLLOW})
    (tmp_path / "rules" / "broken.toml").write_text(BROKEN)
    config = str(tmp_path / "gateway.toml")
    data = tmp_path / "data"
    data.mkdir()
    db = Database(data / "buffer.db")
    db.insert([Reading("sensor/traffic", 4, time.time() - 60)])
    db.close()
    capsys.readouterr()

    assert main(["check", "-c", config]) == 1  # rule-file problems only: the gateway starts
    captured = capsys.readouterr()
    assert "broken.toml:4: rule[0].condition: rule 'broken': unknown point 'sensor/trafic'" in captured.err
    assert "broken.toml is broken: skipped, it has no accepted version" in captured.out
    assert "found in rule files (the gateway still starts)" in captured.err

    assert main(["readings", "-c", config]) == 0
    assert "sensor/traffic  4" in capsys.readouterr().out
    assert main(["readings", "sensor/traffic", "--since", "1h", "-c", config]) == 0
    assert "sensor/traffic  4" in capsys.readouterr().out

    assert main(["override", "lamp/level", "80", "--for", "30m", "-c", config]) == 0
    assert "lamp/level held at 80" in capsys.readouterr().out
    assert main(["override", "-c", config]) == 0
    assert "lamp/level" in capsys.readouterr().out
    assert main(["override", "--clear", "lamp/level", "-c", config]) == 0
    assert "override cleared" in capsys.readouterr().out

    assert main(["rules", "test", str(tmp_path / "rules" / "follow.toml"), "-c", config]) == 0
    assert "follow: change of sensor/traffic" in capsys.readouterr().out
    assert (
        main(["rules", "test", str(tmp_path / "rules" / "follow.toml"), "--replay", "1h", "-c", config]) == 0
    )
    assert "replayed 1 readings" in capsys.readouterr().out
    assert main(["rules", "test", str(tmp_path / "rules" / "broken.toml"), "-c", config]) == 1
    assert "unknown key 'fore'" in capsys.readouterr().err


REPLAY_FAILSAFE = """
[actuators."lamp/level"]
fail_safe = 100
stale_after = "5m"
"""


def test_replay_shows_only_what_the_engine_would_have_done_given_the_buffer(rules_site, tmp_path):
    """The buffer holds one hour: traffic reports for 20 minutes and then falls silent, the door
    keeps reporting. A 6 h replay must not invent a fail-safe in the five hours before the
    buffer's first reading, must print no raw log lines, and must show the real fail-safe."""
    rules_site({"follow.toml": FOLLOW}, REPLAY_FAILSAFE)
    now = time.time()
    data = tmp_path / "data"
    data.mkdir()
    db = Database(data / "buffer.db")
    first = now - 3600
    traffic = [Reading("sensor/traffic", 1 + i % 3, first + i * 120) for i in range(11)]  # 20 min
    door = [Reading("sensor/door", i % 2 == 0, first + 60 + i * 120) for i in range(29)]
    db.insert(sorted([*traffic, *door], key=lambda r: r.ts))
    db.close()
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(FOLLOW)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "rules",
            "test",
            str(candidate),
            "--replay",
            "6h",
            "-c",
            str(tmp_path / "gateway.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "event=" not in proc.stdout + proc.stderr  # no raw log lines
    assert "(the first reading in the buffer)" in proc.stdout
    lines = [line.strip() for line in proc.stdout.splitlines() if line.startswith("  20")]
    failsafes = [line for line in lines if " failsafe " in line]
    silent_from = traffic[-1].ts
    expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(silent_from + 300))
    assert len(failsafes) == 1, proc.stdout
    assert failsafes[0].startswith(f"{expected}Z follow failsafe lamp/level 100"), proc.stdout
    assert "no reading of sensor/traffic for 300s" in failsafes[0]
    first_set = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(first))
    assert lines[0] == f"{first_set}Z follow set lamp/level 10", proc.stdout


def test_replay_primes_the_latest_value_from_before_the_window(rules_site, tmp_path, capsys):
    # the daemon primes latest values from the buffer at start; so does the replay
    rules_site({"follow.toml": FOLLOW})
    now = time.time()
    data = tmp_path / "data"
    data.mkdir()
    db = Database(data / "buffer.db")
    db.insert([Reading("sensor/traffic", 3, now - 7200), Reading("sensor/door", True, now - 600)])
    db.close()
    when = FOLLOW.replace("[[rule.action]]", '[[rule.trigger]]\npoint = "sensor/door"\n[[rule.action]]')
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(when)
    assert (
        main(["rules", "test", str(candidate), "--replay", "1h", "-c", str(tmp_path / "gateway.toml")]) == 0
    )
    out = capsys.readouterr().out
    fired = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 600))
    assert f"{fired}Z follow set lamp/level 30" in out, out
