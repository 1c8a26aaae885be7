"""gateway-commit: at every boot, commit a tried slot that passes the gate, or record why not.

In the tried (uncommitted) slot it polls the gate (``gate.py``) every few seconds, keeps
``attempt.json`` on the data partition up to date with what it waits for, and then either runs
``rauc status mark-good`` (the tryboot backend rewrites autoboot.txt) or records the failure,
marks the slot bad and reboots at once into the default slot. In the default slot it settles a
pending update (``records.py``): the outcome, with the reason of a rollback, goes to
``<data_dir>/update.json`` where the daemon shows and reports it. It is also RAUC's
post-install handler, which writes ``tried.json``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import gate, records, tryboot
from .backend import Backend
from .files import Paths, write_atomic

#: WDIOF_CARDRESET in a watchdog's bootstatus: the last reset was the watchdog's
WDIOF_CARDRESET = 0x20
UPDATE_FILE = "update.json"


def log(**fields: object) -> None:
    print(
        "gateway-commit " + " ".join(f"{k}={_quote(v)}" for k, v in fields.items()),
        file=sys.stderr,
        flush=True,
    )


def _quote(value: object) -> str:
    text = str(value)
    return f'"{text}"' if " " in text or not text else text


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path: Path, value: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(value, sort_keys=True) + "\n")
    os.chmod(path, 0o644)  # the daemon (user gateway) reads update.json


def image_version(release: Path) -> str:
    try:
        for line in release.read_text().splitlines():
            if line.startswith("IMAGE_VERSION="):
                return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def manifest_version(bundle_mount: Path) -> str:
    section = ""
    try:
        lines = (bundle_mount / "manifest.raucm").read_text().splitlines()
    except OSError:
        return "unknown"
    for line in lines:
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[update]" and line.startswith("version="):
            return line.split("=", 1)[1].strip()
    return "unknown"


def _seconds_env(env: Mapping[str, str], key: str, default: float) -> float:
    try:
        return float(env.get(key, default))
    except ValueError:
        raise SystemExit(f"gateway-commit: {key}={env[key]!r} is not a number of seconds") from None


@dataclass(frozen=True, slots=True)
class NoResult:
    """A command that gave no result (it timed out or could not start), and why."""

    why: str


@dataclass
class Commit:
    """The commit service's world: its files, the commands it runs, its clock."""

    paths: Paths
    data_dir: Path  # the daemon's data directory: health.json in, update.json out
    release: Path
    watchdog_status: Path
    config: gate.GateConfig
    exits_file: Path = Path(gate.EXITS_FILE)  # how each run of the daemon ended (ExecStopPost=)
    interval_s: float = 2.0
    mark_good_timeout_s: float = 60.0  # a box starved by a hang may never finish it
    systemctl: Sequence[str] = ("systemctl",)
    rauc: Sequence[str] = ("rauc",)
    reboot: Sequence[str] = ("systemctl", "reboot")
    monotonic: Callable[[], float] = time.monotonic
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    backend: Backend = field(init=False)

    def __post_init__(self) -> None:
        self.backend = Backend(self.paths)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Commit:
        env = dict(os.environ if env is None else env)
        config = gate.GateConfig(
            hold_s=_seconds_env(env, "GATEWAY_COMMIT_HOLD", 300.0),
            deadline_s=_seconds_env(env, "GATEWAY_COMMIT_DEADLINE", 1200.0),
        )
        return cls(
            paths=Paths.from_env(env),
            data_dir=Path(env.get("GATEWAY_DATA_DIR", "/var/lib/gateway")),
            release=Path(env.get("GATEWAY_IMAGE_RELEASE", "/etc/gateway-image-release")),
            watchdog_status=Path(
                env.get("GATEWAY_WATCHDOG_BOOTSTATUS", "/sys/class/watchdog/watchdog0/bootstatus")
            ),
            config=config,
            exits_file=Path(env.get("GATEWAY_COMMIT_EXITS", gate.EXITS_FILE)),
            interval_s=_seconds_env(env, "GATEWAY_COMMIT_INTERVAL", 2.0),
            systemctl=shlex.split(env.get("GATEWAY_COMMIT_SYSTEMCTL", "systemctl")),
            rauc=shlex.split(env.get("GATEWAY_COMMIT_RAUC", "rauc")),
            reboot=shlex.split(env.get("GATEWAY_COMMIT_REBOOT", "systemctl reboot")),
        )

    # -- files -----------------------------------------------------------------------------

    @property
    def tried_file(self) -> Path:
        return self.paths.data / "tried.json"

    @property
    def attempt_file(self) -> Path:
        return self.paths.data / "attempt.json"

    def watchdog_reset(self) -> bool:
        try:
            return bool(int(self.watchdog_status.read_text().strip(), 0) & WDIOF_CARDRESET)
        except (OSError, ValueError):
            return False

    def _run(self, argv: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str] | NoResult:
        try:
            return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            log(event="command_failed", command=" ".join(argv), error=exc)
            return NoResult(f"{argv[0]} did not finish within {timeout:g} s")
        except OSError as exc:
            log(event="command_failed", command=" ".join(argv), error=exc)
            return NoResult(f"{argv[0]} could not run: {exc.strerror or exc}")

    # -- what the gate sees ------------------------------------------------------------------

    def unit_view(self) -> gate.UnitView | None:
        done = self._run([*self.systemctl, "show", gate.UNIT, "-p", ",".join(gate.SHOW_PROPERTIES)], 30)
        if isinstance(done, NoResult) or done.returncode != 0:
            return None
        return gate.UnitView.parse(done.stdout)

    def inputs(self, started: float) -> gate.Inputs:
        unit = self.unit_view()
        snapshot = read_json(self.data_dir / "health.json")
        age = None
        if snapshot is not None:
            try:
                age = max(self.clock() - float(snapshot["snapshot"]["written_at"]), 0.0)
            except (KeyError, TypeError, ValueError):
                snapshot = None
        try:
            exits = gate.MainExit.parse_lines(self.exits_file.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            exits = ()
        return gate.Inputs(
            now=self.monotonic(), started=started, unit=unit, health=snapshot, health_age_s=age, exits=exits
        )

    # -- the two roles -----------------------------------------------------------------------

    def run(self) -> int:
        booted = self.backend.booted()
        autoboot = self.backend.autoboot()
        # At boot a tryboot request is spent: the firmware took it (or the box was reset first).
        self.paths.tryboot_request.unlink(missing_ok=True)
        if tryboot.boot_state(autoboot, booted) is tryboot.BootState.COMMITTED:
            try:
                self.settle(booted, autoboot.default)
            except Exception as exc:  # noqa: BLE001 - the default slot must never reboot over a record
                log(event="settle_failed", error=exc)
            return 0
        try:
            return self.gate(booted)
        except Exception as exc:  # noqa: BLE001 - a broken gate is a failed check
            self.fail(booted, gate.Fail("gateway-commit", f"the commit service itself failed: {exc!r}"))
            return 1

    def settle(self, booted: str, default: str) -> dict[str, Any] | None:
        tried = read_json(self.tried_file)
        outcome = records.settle(
            tried,
            read_json(self.attempt_file),
            booted=booted,
            default=default,
            watchdog_reset=self.watchdog_reset(),
            now=self.clock(),
        )
        if outcome is None:
            return None
        if outcome["result"] == records.ROLLED_BACK:
            self._run([*self.rauc, "status", "mark-bad", "other"])
        write_json(self.data_dir / UPDATE_FILE, outcome)
        for path in (self.tried_file, self.attempt_file):
            path.unlink(missing_ok=True)
        log(
            event="update_settled",
            result=outcome["result"],
            version=outcome.get("version"),
            check=outcome.get("check"),
            reason=outcome.get("reason"),
        )
        return outcome

    def gate(self, booted: str) -> int:
        tried = read_json(self.tried_file)
        version = image_version(self.release)
        started = self.monotonic()
        last: str | None = None
        log(
            event="gate_started",
            slot=booted,
            version=version,
            hold_s=self.config.hold_s,
            deadline_s=self.config.deadline_s,
        )
        while True:
            decision = gate.decide(self.inputs(started), self.config)
            match decision:
                case gate.Wait(waiting_for=waiting, check=check):
                    if last != check:  # one write per check reached, not one per poll (SD wear)
                        write_json(
                            self.attempt_file,
                            records.attempt_record(
                                tried,
                                slot=booted,
                                version=version,
                                stage=records.CHECKING,
                                now=self.clock(),
                                check=check,
                                reason=waiting,
                            ),
                        )
                        last = check
                        log(event="waiting", check=check, waiting_for=waiting)
                    self.sleep(self.interval_s)
                case gate.Commit(summary=summary):
                    return self.commit(booted, tried, version, summary)
                case gate.Fail():
                    self.fail(booted, decision, tried, version)
                    return 1

    def commit(self, booted: str, tried: Mapping[str, Any] | None, version: str, summary: str) -> int:
        done = self._run([*self.rauc, "status", "mark-good"], self.mark_good_timeout_s)
        autoboot = self.backend.autoboot()
        if autoboot.default != booted:
            if isinstance(done, NoResult):
                why = done.why
            else:
                why = done.stderr.strip() or f"it exited {done.returncode} and autoboot.txt was not rewritten"
            self.fail(
                booted,
                gate.Fail("commit", f"rauc status mark-good did not commit slot {booted}: {why}"),
                tried,
                version,
            )
            return 1
        write_json(
            self.attempt_file,
            records.attempt_record(
                tried, slot=booted, version=version, stage=records.DONE, now=self.clock(), reason=summary
            ),
        )
        log(event="committed", slot=booted, version=version, summary=summary)
        self.settle(booted, autoboot.default)
        return 0

    def fail(
        self,
        booted: str,
        failure: gate.Fail,
        tried: Mapping[str, Any] | None = None,
        version: str | None = None,
    ) -> None:
        if tried is None:
            tried = read_json(self.tried_file)
        write_json(
            self.attempt_file,
            records.attempt_record(
                tried,
                slot=booted,
                version=version or image_version(self.release),
                stage=records.FAILED,
                now=self.clock(),
                check=failure.check,
                reason=failure.reason,
                exit_status=failure.exit_status,
            ),
        )
        log(
            event="check_failed",
            slot=booted,
            check=failure.check,
            reason=failure.reason,
            exit_status=failure.exit_status,
        )
        self._run([*self.rauc, "status", "mark-bad"])
        log(event="rebooting", into="default slot")
        self._run(self.reboot)

    # -- RAUC's post-install handler ------------------------------------------------------------

    def post_install(self, env: Mapping[str, str]) -> int:
        booted = self.backend.booted()
        bundle = Path(env.get("RAUC_BUNDLE_MOUNT_POINT", "/nonexistent"))
        record = records.tried_record(
            slot=tryboot.other(booted),
            version=manifest_version(bundle),
            from_slot=booted,
            from_version=image_version(self.release),
            now=self.clock(),
        )
        self.attempt_file.unlink(missing_ok=True)
        write_json(self.tried_file, record)
        log(
            event="installed",
            slot=record["slot"],
            version=record["version"],
            from_version=record["from_version"],
        )
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commit = Commit.from_env()
    try:
        match args:
            case ["run"]:
                return commit.run()
            case ["post-install"]:
                return commit.post_install(os.environ)
            case _:
                print("usage: gateway-commit run | post-install", file=sys.stderr)
                return 2
    except tryboot.TrybootError as exc:
        # Which slot runs is unknown: never reboot over that (the unit reboots on failure).
        log(error=exc)
        return 0
