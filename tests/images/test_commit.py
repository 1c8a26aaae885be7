"""The commit service: the gate's decisions, the rollback records, and gateway-commit run on
real files (p1, the data partition, health.json) with stand-ins for systemctl, rauc and reboot."""

import json
import os
import re
import stat
import sys
import textwrap
from pathlib import Path

import pytest
from ota import gate, records, tryboot
from ota.commit import Commit
from ota.files import Paths

REPO = Path(__file__).resolve().parents[2]
CONFIG = gate.GateConfig(hold_s=300, deadline_s=1200)
T0 = 1000.0  # CLOCK_MONOTONIC at the gate's start


def unit(**overrides):
    props = {
        "ActiveState": "active",
        "SubState": "running",
        "Result": "success",
        "ExecMainCode": "0",
        "ExecMainStatus": "0",
        "NRestarts": "0",
        "ActiveEnterTimestampMonotonic": str(int(T0 * 1e6)),
        "WatchdogTimestampMonotonic": str(int(T0 * 1e6)),
        "WatchdogUSec": "30s",
        "ConditionResult": "yes",
        "MainPID": "4242",
    }
    props.update({k: str(v) for k, v in overrides.items()})
    return "\n".join(f"{k}={v}" for k, v in props.items()) + "\n"


def health(**store):
    return {
        "snapshot": {"written_at": 0, "pid": 4242},
        "devices": {
            "meter-1": {"state": "running", "status": "online"},
            "lamp-1": {"state": "backoff", "status": "offline", "last_error": "timeout"},
        },
        "store": {"committed_readings": 12, "commits": 3, **store},
        "components": {"upstreams": {"city": {"failures_in_row": 50, "last_error": "unreachable"}}},
    }


def decide(now, show=None, snapshot=None, age=1.0):
    view = gate.UnitView.parse(show if show is not None else unit())
    return gate.decide(
        gate.Inputs(now=now, started=T0, unit=view, health=snapshot or health(), health_age_s=age), CONFIG
    )


def test_parse_reads_systemctl_show_in_both_duration_spellings():
    view = gate.UnitView.parse(unit(WatchdogUSec="1min 30s"))
    assert view.watchdog_s == 90 and view.active_since == T0 and view.main_pid == 4242
    assert gate.UnitView.parse(unit(WatchdogUSec="30000000")).watchdog_s == 30
    assert gate.UnitView.parse(unit(ActiveEnterTimestampMonotonic=0)).active_since is None


def test_commits_after_the_hold_with_the_uplink_down_and_a_device_offline():
    """The network is never a condition, nor a device whose cable is out (its driver runs)."""
    assert decide(T0 + 299, unit(WatchdogTimestampMonotonic=int((T0 + 290) * 1e6))) == gate.Wait(
        "1 s more of WATCHDOG=1", "watchdog"
    )
    decision = decide(T0 + 301, unit(WatchdogTimestampMonotonic=int((T0 + 295) * 1e6)))
    assert isinstance(decision, gate.Commit)


@pytest.mark.parametrize(
    "show, check, words, status",
    [
        (
            unit(ActiveState="failed", Result="exit-code", ExecMainCode=1, ExecMainStatus=3),
            "gateway.service",
            "gateway.service exited with status 3",
            3,
        ),
        (
            unit(NRestarts=1, ExecMainCode=2, ExecMainStatus=11),
            "gateway.service",
            "gateway.service was killed by signal 11 (restarted 1 times)",
            11,
        ),
        (
            unit(ActiveState="activating", SubState="auto-restart", Result="watchdog", NRestarts=1),
            "watchdog",
            "gateway.service stopped sending WATCHDOG=1 and was killed by systemd",
            None,
        ),
    ],
)
def test_a_crash_a_restart_or_a_watchdog_kill_fails_at_once(show, check, words, status):
    decision = decide(T0 + 5, show)
    assert isinstance(decision, gate.Fail)
    assert decision.check == check and decision.reason.startswith(words) and decision.exit_status == status


@pytest.mark.parametrize(
    "show, snapshot, age, check, words",
    [
        (
            unit(ActiveState="activating", SubState="start", ActiveEnterTimestampMonotonic=0),
            None,
            1.0,
            "ready",
            "gateway.service to send READY=1",
        ),
        (unit(WatchdogTimestampMonotonic=0), None, 1.0, "watchdog", "a WATCHDOG=1"),
        (unit(WatchdogUSec=0), None, 1.0, "watchdog", "to have a WatchdogSec"),
        (unit(), None, 60.0, "snapshot", "a fresh health snapshot"),
        (
            unit(),
            {**health(), "snapshot": {"written_at": 0, "pid": 99}},
            1.0,
            "snapshot",
            "an earlier process",
        ),
        (unit(), health(committed_readings=0), 1.0, "store", "the first readings committed"),
        (unit(), health(last_error="disk I/O error"), 1.0, "store", "the buffer to commit (disk I/O error)"),
        (
            unit(),
            {**health(), "devices": {"m": {"state": "starting"}}},
            1.0,
            "drivers",
            "drivers to start: m",
        ),
    ],
)
def test_each_check_is_waited_for_then_fails_at_the_deadline_naming_it(show, snapshot, age, check, words):
    now = T0 + 400
    show_now = show.replace(
        f"WatchdogTimestampMonotonic={int(T0 * 1e6)}", f"WatchdogTimestampMonotonic={int((now - 1) * 1e6)}"
    )
    waiting = decide(now, show_now, snapshot, age)
    assert isinstance(waiting, gate.Wait) and waiting.check == check and words in waiting.waiting_for
    late = T0 + 1200
    failed = decide(
        late, show_now.replace(f"={int((now - 1) * 1e6)}", f"={int((late - 1) * 1e6)}"), snapshot, age
    )
    assert isinstance(failed, gate.Fail) and failed.check == check
    assert (
        failed.reason.startswith("not healthy 1200 s after boot: still waiting for ")
        and words in failed.reason
    )


def test_a_box_without_a_site_config_commits_on_the_boot_alone():
    show = unit(
        ActiveState="inactive", SubState="dead", ConditionResult="no", ActiveEnterTimestampMonotonic=0
    )
    assert isinstance(decide(T0 + 10, show), gate.Wait)
    assert "not configured" in decide(T0 + 300, show).summary


def test_hold_must_be_shorter_than_the_deadline():
    with pytest.raises(ValueError, match="must be shorter"):
        gate.GateConfig(hold_s=600, deadline_s=600)


TRIED = records.tried_record(slot="B", version="2.0", from_slot="A", from_version="1.0", now=50.0)


@pytest.mark.parametrize(
    "attempt, reset, check, words",
    [
        (None, False, records.NEVER_REACHED, "never reached the commit"),
        (
            records.attempt_record(
                TRIED,
                slot="B",
                version="2.0",
                stage=records.FAILED,
                now=60,
                check="gateway.service",
                reason="gateway.service exited with status 3",
                exit_status=3,
            ),
            False,
            "gateway.service",
            "exited with status 3",
        ),
        (
            records.attempt_record(
                TRIED,
                slot="B",
                version="2.0",
                stage=records.CHECKING,
                now=60,
                check="ready",
                reason="gateway.service to send READY=1",
            ),
            True,
            records.WATCHDOG_RESET,
            "hardware watchdog reset the box while waiting for gateway.service to send READY=1",
        ),
        (
            records.attempt_record(
                TRIED, slot="B", version="2.0", stage=records.CHECKING, now=60, check="store", reason="x"
            ),
            False,
            records.RESET,
            "watchdog reset or power loss",
        ),
        (
            records.attempt_record({"id": "older"}, slot="B", version="1.9", stage=records.FAILED, now=1),
            False,
            records.NEVER_REACHED,
            "never reached",
        ),
    ],
)
def test_settle_names_why_a_rollback_happened(attempt, reset, check, words):
    outcome = records.settle(TRIED, attempt, booted="A", default="A", watchdog_reset=reset, now=70)
    assert (
        outcome["result"] == records.ROLLED_BACK and outcome["check"] == check and words in outcome["reason"]
    )
    assert outcome["version"] == "2.0" and outcome["from_version"] == "1.0" and outcome["id"] == TRIED["id"]


def test_settle_is_quiet_without_an_update_and_in_the_tried_slot():
    assert records.settle(None, None, booted="A", default="A", watchdog_reset=False, now=1) is None
    assert records.settle(TRIED, None, booted="B", default="A", watchdog_reset=False, now=1) is None
    assert (
        records.settle(TRIED, None, booted="B", default="B", watchdog_reset=False, now=1)["result"]
        == "committed"
    )


# -- gateway-commit run, on files ---------------------------------------------------------------

FAKE_RAUC = """#!{python}
# stands in for `rauc status mark-good|mark-bad [other]`: calls the tryboot backend like RAUC
import os, sys
sys.path.insert(0, {lib!r})
from ota.backend import Backend
from ota.files import Paths
from ota import tryboot
b = Backend(Paths.from_env())
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
_, verb, *which = sys.argv[1:]
slot = b.booted() if not which or which[0] == "booted" else tryboot.other(b.booted())
b.set_state(slot, "good" if verb == "mark-good" else "bad")
"""


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


class World:
    """A card mid-update: p1 and the data partition as directories, a daemon's snapshots."""

    def __init__(self, tmp_path: Path, booted: str):
        self.root = tmp_path
        self.config = tmp_path / "config"
        self.config.mkdir()
        (self.config / "autoboot.txt").write_text((REPO / "images/boot/autoboot.txt").read_text())
        (tmp_path / "cmdline").write_text(
            f"root=PARTUUID=6a7e0001-0{5 if booted == 'A' else 6} gateway.slot={booted}\n"
        )
        self.data_dir = tmp_path / "gateway-state"
        self.data_dir.mkdir()
        self.update = tmp_path / "update"
        self.log = tmp_path / "commands.log"
        self.show = tmp_path / "show.txt"
        self.show.write_text(unit())
        (tmp_path / "release").write_text("IMAGE_VERSION=2.0\n")
        self.mono, self.wall = T0, 5000.0
        env = {
            "GATEWAY_TRYBOOT_DIR": str(self.config),
            "GATEWAY_TRYBOOT_CMDLINE": str(tmp_path / "cmdline"),
            "GATEWAY_TRYBOOT_DT_PARTITION": str(tmp_path / "none"),
            "GATEWAY_UPDATE_DIR": str(self.update),
            "FAKE_LOG": str(self.log),
        }
        os.environ.update(env)  # for the stand-in scripts; restored by the fixture
        systemctl = script(tmp_path / "systemctl", f"#!/bin/sh\ncat {self.show}\n")
        rauc = script(tmp_path / "rauc", FAKE_RAUC.format(python=sys.executable, lib=str(REPO / "images")))
        reboot = script(tmp_path / "reboot", f"#!/bin/sh\necho reboot >>{self.log}\n")
        self.on_tick = lambda world: None
        self.commit = Commit(
            paths=Paths.from_env(env),
            data_dir=self.data_dir,
            release=tmp_path / "release",
            watchdog_status=tmp_path / "bootstatus",
            config=CONFIG,
            interval_s=2.0,
            systemctl=[str(systemctl)],
            rauc=[str(rauc)],
            reboot=[str(reboot)],
            monotonic=lambda: self.mono,
            clock=lambda: self.wall,
            sleep=self.tick,
        )

    def tick(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds
        self.show.write_text(
            re.sub(
                r"(?m)^WatchdogTimestampMonotonic=[1-9]\d*$",  # a daemon that pings
                f"WatchdogTimestampMonotonic={int((self.mono - 1) * 1e6)}",
                self.show.read_text(),
            )
        )
        self.write_health()
        self.on_tick(self)

    def write_health(self, **store):
        snapshot = health(**store)
        snapshot["snapshot"]["written_at"] = self.wall
        (self.data_dir / "health.json").write_text(json.dumps(snapshot))

    def autoboot(self):
        return tryboot.parse_autoboot((self.config / "autoboot.txt").read_text())

    def commands(self):
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def world(tmp_path, monkeypatch):
    for key in (
        "GATEWAY_TRYBOOT_DIR",
        "GATEWAY_TRYBOOT_CMDLINE",
        "GATEWAY_TRYBOOT_DT_PARTITION",
        "GATEWAY_UPDATE_DIR",
        "FAKE_LOG",
    ):
        monkeypatch.delenv(key, raising=False)

    def make(booted):
        return World(tmp_path, booted)

    yield make


def install_tried(w):
    """What RAUC's post-install handler leaves, run for real in slot A before the reboot."""
    w.update.mkdir(exist_ok=True)
    (w.config / "autoboot.txt").write_text(tryboot.Autoboot("A", "B").render())
    (w.update / "tried.json").write_text(json.dumps(TRIED))


def test_the_tried_slot_commits_after_the_hold_and_records_the_outcome(world):
    w = world("B")
    install_tried(w)
    (w.config / "tryboot.req").write_text("B\n")
    w.write_health()
    assert w.commit.run() == 0
    assert w.autoboot() == tryboot.Autoboot("B", "A")
    assert w.mono - T0 >= 300, "not before the hold"
    assert w.commands() == ["status mark-good"]
    outcome = json.loads((w.data_dir / "update.json").read_text())
    assert outcome["result"] == "committed" and outcome["version"] == "2.0" and outcome["slot"] == "B"
    assert not (w.update / "tried.json").exists() and not (w.update / "attempt.json").exists()
    assert not (w.config / "tryboot.req").exists()
    assert oct((w.data_dir / "update.json").stat().st_mode & 0o777) == "0o644"


def test_a_mark_good_that_does_not_finish_is_a_failed_commit_saying_so(world, tmp_path):
    w = world("B")
    install_tried(w)
    w.write_health()
    slow = script(
        tmp_path / "slow-rauc",
        f'#!/bin/sh\n[ "$2" = mark-good ] && exec sleep 30\nexec {w.commit.rauc[0]} "$@"\n',
    )
    w.commit.rauc = [str(slow)]
    w.commit.mark_good_timeout_s = 0.5
    assert w.commit.run() == 1
    attempt = json.loads((w.update / "attempt.json").read_text())
    assert attempt["stage"] == "failed" and attempt["check"] == "commit"
    assert "did not finish within 0.5 s" in attempt["reason"], attempt["reason"]
    assert w.commands() == ["status mark-bad", "reboot"]
    assert w.autoboot().default == "A"


def test_the_first_failed_run_names_the_failure_after_systemd_restarted_the_daemon():
    """systemctl show already describes the next, running process (status 0): the exit
    record of the run that failed says why."""
    exits = gate.MainExit.parse_lines(
        "SERVICE_RESULT=success EXIT_CODE=exited EXIT_STATUS=0\n"
        "garbage line\n"
        "SERVICE_RESULT=exit-code EXIT_CODE=exited EXIT_STATUS=2\n"
        "SERVICE_RESULT=signal EXIT_CODE=killed EXIT_STATUS=TERM\n"
    )
    running_again = gate.UnitView.parse(
        unit(NRestarts=1, ActiveEnterTimestampMonotonic=0, ActiveState="activating")
    )
    decision = gate.decide(
        gate.Inputs(now=T0 + 5, started=T0, unit=running_again, health=None, health_age_s=None, exits=exits),
        CONFIG,
    )
    assert decision == gate.Fail(
        "gateway.service", "gateway.service exited with status 2 (restarted 1 times)", 2
    )
    watchdog = gate.MainExit.parse_lines("SERVICE_RESULT=watchdog EXIT_CODE=killed EXIT_STATUS=ABRT\n")
    decision = gate.decide(
        gate.Inputs(now=T0 + 5, started=T0, unit=None, health=None, health_age_s=None, exits=watchdog), CONFIG
    )
    assert decision == gate.Fail(
        "watchdog", "gateway.service stopped sending WATCHDOG=1 and was killed by systemd", None
    )
    # a run stopped on purpose (a restart after a config import) is not a failure
    clean = gate.MainExit.parse_lines("SERVICE_RESULT=success EXIT_CODE=killed EXIT_STATUS=TERM\n")
    view = gate.UnitView.parse(unit())
    decision = gate.decide(
        gate.Inputs(now=T0 + 5, started=T0, unit=view, health=health(), health_age_s=1.0, exits=clean), CONFIG
    )
    assert isinstance(decision, gate.Wait) and decision.check == "watchdog"


def test_a_crash_waiting_for_its_restart_fails_at_once():
    decision = decide(
        T0 + 5,
        unit(
            ActiveState="activating",
            SubState="auto-restart",
            Result="exit-code",
            ExecMainCode=1,
            ExecMainStatus=2,
            ActiveEnterTimestampMonotonic=0,
        ),
    )
    assert decision == gate.Fail("gateway.service", "gateway.service exited with status 2", 2)


def test_a_crash_the_gate_sees_only_after_the_restart_is_recorded_with_its_status(world, tmp_path):
    """The daemon exits 2 and systemd restarts it between two polls of the gate."""
    w = world("B")
    install_tried(w)
    w.write_health()
    exits = tmp_path / "gateway.service.exits"
    w.commit.exits_file = exits

    def crash_and_restart_at_60s(world):
        if world.mono - T0 >= 60 and not exits.exists():
            exits.write_text("SERVICE_RESULT=exit-code EXIT_CODE=exited EXIT_STATUS=2\n")
            world.show.write_text(
                unit(NRestarts=1, ActiveState="activating", SubState="start", ActiveEnterTimestampMonotonic=0)
            )

    w.on_tick = crash_and_restart_at_60s
    assert w.commit.run() == 1
    attempt = json.loads((w.update / "attempt.json").read_text())
    assert attempt["stage"] == "failed" and attempt["check"] == "gateway.service"
    assert attempt["exit_status"] == 2 and "exited with status 2" in attempt["reason"]


def test_a_crash_in_the_tried_slot_reboots_at_once_and_the_old_slot_records_why(world, tmp_path):
    w = world("B")
    install_tried(w)
    w.write_health()

    def crash_at_60s(world):
        if world.mono - T0 >= 60:
            world.show.write_text(
                unit(ActiveState="failed", Result="exit-code", ExecMainCode=1, ExecMainStatus=3)
            )

    w.on_tick = crash_at_60s
    assert w.commit.run() == 1
    assert w.mono - T0 < 70, "at once, not at the deadline"
    assert w.commands() == ["status mark-bad", "reboot"]
    assert w.autoboot().default == "A"
    attempt = json.loads((w.update / "attempt.json").read_text())
    assert attempt["stage"] == "failed" and attempt["exit_status"] == 3

    # the firmware boots the default slot: A's commit service settles the update
    (tmp_path / "cmdline").write_text("root=PARTUUID=6a7e0001-05 gateway.slot=A\n")
    old = Commit(
        paths=w.commit.paths,
        data_dir=w.data_dir,
        release=tmp_path / "release-a",
        watchdog_status=tmp_path / "bs",
        config=CONFIG,
        systemctl=w.commit.systemctl,
        rauc=w.commit.rauc,
        reboot=w.commit.reboot,
        monotonic=lambda: 0.0,
        clock=lambda: 9000.0,
        sleep=lambda s: None,
    )
    assert old.run() == 0
    outcome = json.loads((w.data_dir / "update.json").read_text())
    assert outcome["result"] == "rolled-back" and outcome["check"] == "gateway.service"
    assert outcome["reason"] == "gateway.service exited with status 3" and outcome["exit_status"] == 3
    assert outcome["version"] == "2.0" and outcome["running_slot"] == "A"
    assert w.commands()[-1] == "status mark-bad other"
    assert not (w.update / "tried.json").exists()
    assert old.run() == 0 and w.commands()[-1] == "status mark-bad other", "settled once"


def test_a_hang_leaves_the_check_it_waited_for_and_the_watchdog_reset_is_named(world, tmp_path):
    w = world("B")
    install_tried(w)
    w.show.write_text(unit(ActiveState="activating", SubState="start", ActiveEnterTimestampMonotonic=0))

    class Hang(Exception):
        pass

    def hang(world):
        raise Hang  # the box froze here; the hardware watchdog resets it

    w.on_tick = hang
    with pytest.raises(Hang):
        w.commit.gate("B")
    assert json.loads((w.update / "attempt.json").read_text())["check"] == "ready"
    (tmp_path / "cmdline").write_text("gateway.slot=A\n")
    (tmp_path / "bootstatus").write_text("32\n")  # WDIOF_CARDRESET
    outcome = w.commit.settle("A", "A")
    assert outcome["check"] == "hardware-watchdog"
    assert "while waiting for gateway.service to send READY=1" in outcome["reason"]


def test_a_tried_slot_that_never_ran_the_commit_service_is_reported_so(world, tmp_path):
    w = world("A")
    install_tried(w)  # the tried slot B never got as far as gateway-commit
    assert w.commit.run() == 0
    outcome = json.loads((w.data_dir / "update.json").read_text())
    assert outcome["check"] == "never-reached-commit" and "never reached the commit" in outcome["reason"]


def test_the_default_slot_with_nothing_pending_writes_nothing(world):
    w = world("A")
    assert w.commit.run() == 0
    assert not (w.data_dir / "update.json").exists() and w.commands() == []


def test_the_post_install_handler_records_the_slot_and_version_to_try(world, tmp_path):
    w = world("A")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.raucm").write_text(
        textwrap.dedent("""\
        [update]
        compatible=city-gateway-rpi
        version=2.1

        [image.rootfs]
        filename=system.img
        """)
    )
    (tmp_path / "release").write_text("IMAGE_VERSION=2.0\n")
    assert w.commit.post_install({"RAUC_BUNDLE_MOUNT_POINT": str(bundle)}) == 0
    tried = json.loads((w.update / "tried.json").read_text())
    assert (tried["slot"], tried["version"], tried["from_slot"], tried["from_version"]) == (
        "B",
        "2.1",
        "A",
        "2.0",
    )
