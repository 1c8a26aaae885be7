"""The health gate of a tried slot: commit, keep waiting, or fail with a reason.

Pure code over values: systemd's view of gateway.service (``systemctl show``) and the
daemon's health snapshot (``<data_dir>/health.json``) go in, one decision comes out. The
network is never a condition: a cabinet whose uplink is down must still be able to commit
(meta-seapath#287). ``commit.py`` gathers the inputs and acts on the decision.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: the units this gate judges, for the record
UNIT = "gateway.service"
#: ``systemctl show -p`` of what ``UnitView.parse`` reads
SHOW_PROPERTIES = (
    "ActiveState",
    "SubState",
    "Result",
    "ExecMainCode",
    "ExecMainStatus",
    "NRestarts",
    "ActiveEnterTimestampMonotonic",
    "WatchdogTimestampMonotonic",
    "WatchdogUSec",
    "ConditionResult",
    "MainPID",
)
#: ExecMainCode values (siginfo's si_code) that mean "killed by a signal"
CLD_KILLED, CLD_DUMPED = 2, 3
#: where the gateway unit's ExecStopPost= appends one ``MainExit`` line per run (tmpfs: no card
#: writes, and a new boot starts with none)
EXITS_FILE = "/run/gateway-commit/gateway.service.exits"


@dataclass(frozen=True, slots=True)
class MainExit:
    """How one run of the daemon ended, as systemd hands it to ``ExecStopPost=``:
    ``$SERVICE_RESULT`` (success, exit-code, signal, core-dump, watchdog, timeout, …),
    ``$EXIT_CODE`` (exited, killed, dumped) and ``$EXIT_STATUS`` (a number, or a signal name)."""

    result: str
    code: str
    status: str

    @classmethod
    def parse_lines(cls, text: str) -> tuple[MainExit, ...]:
        """``SERVICE_RESULT=… EXIT_CODE=… EXIT_STATUS=…`` lines; anything else is skipped."""
        exits = []
        for line in text.splitlines():
            fields = dict(word.split("=", 1) for word in line.split() if "=" in word)
            if fields.get("SERVICE_RESULT"):
                exits.append(
                    cls(fields["SERVICE_RESULT"], fields.get("EXIT_CODE", ""), fields.get("EXIT_STATUS", ""))
                )
        return tuple(exits)

    @property
    def failed(self) -> bool:
        return self.result != "success"

    @property
    def exit_status(self) -> int | None:
        """The exit status, or the signal's number; None when systemd gave neither."""
        if self.status.isdigit():
            return int(self.status)
        try:
            return int(signal.Signals["SIG" + self.status.removeprefix("SIG")])
        except KeyError:
            return None

    def how_it_ended(self) -> str:
        if self.result == "timeout":
            return "timed out (it did not start or stop in time)"
        name = self.status if self.status.startswith("SIG") or not self.status else "SIG" + self.status
        return _how_it_ended(
            self.result,
            killed=self.code == "killed",
            dumped=self.code == "dumped",
            status=self.exit_status,
            signal_name=name,
        )


@dataclass(frozen=True, slots=True)
class UnitView:
    active_state: str
    sub_state: str
    result: str
    exit_code: int  # ExecMainCode: 1 exited, 2 killed, 3 dumped core
    exit_status: int  # ExecMainStatus: exit status, or the signal number
    restarts: int
    active_since: float | None  # CLOCK_MONOTONIC seconds when READY=1 made it active
    last_watchdog: float | None  # CLOCK_MONOTONIC seconds of the last WATCHDOG=1
    watchdog_s: float  # WatchdogSec; 0 when the unit has none
    condition_met: bool
    main_pid: int

    @classmethod
    def parse(cls, text: str) -> UnitView:
        """``systemctl show -p …`` output (``Key=value`` lines)."""
        props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

        def number(key: str) -> int:
            try:
                return int(props.get(key, "0") or 0)
            except ValueError:
                return 0

        def mono(key: str) -> float | None:
            value = number(key)
            return value / 1e6 if value > 0 else None

        watchdog = props.get("WatchdogUSec", "0")
        return cls(
            active_state=props.get("ActiveState", "unknown"),
            sub_state=props.get("SubState", "unknown"),
            result=props.get("Result", "unknown"),
            exit_code=number("ExecMainCode"),
            exit_status=number("ExecMainStatus"),
            restarts=number("NRestarts"),
            active_since=mono("ActiveEnterTimestampMonotonic"),
            last_watchdog=mono("WatchdogTimestampMonotonic"),
            watchdog_s=number("WatchdogUSec") / 1e6 if watchdog.isdigit() else _seconds(watchdog),
            condition_met=props.get("ConditionResult", "yes") != "no",
            main_pid=number("MainPID"),
        )

    def how_it_ended(self) -> str:
        return _how_it_ended(
            self.result,
            killed=self.exit_code == CLD_KILLED,
            dumped=self.exit_code == CLD_DUMPED,
            status=self.exit_status,
        )


def _how_it_ended(
    result: str, *, killed: bool, dumped: bool, status: int | None, signal_name: str = ""
) -> str:
    """One run's end in words, whether systemctl show or ExecStopPost= told it."""
    if result == "watchdog":
        return "stopped sending WATCHDOG=1 and was killed by systemd"
    if killed or dumped:
        name = f" ({signal_name})" if signal_name else ""
        return f"was killed by signal {status}{name}" + (" (core dumped)" if dumped else "")
    if status:
        return f"exited with status {status}"
    return f"ended ({result})"


@dataclass(frozen=True, slots=True)
class GateConfig:
    #: how long the daemon must run after READY=1, pinging the watchdog, before the commit
    hold_s: float = 300.0
    #: give up on a slot that has not passed every check this long after boot
    deadline_s: float = 1200.0
    #: a snapshot older than this is not the daemon's current word (it writes every 2 s)
    snapshot_stale_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.hold_s < self.deadline_s:
            raise ValueError(
                f"commit hold ({self.hold_s:g} s) must be shorter than the deadline ({self.deadline_s:g} s)"
            )


@dataclass(frozen=True, slots=True)
class Inputs:
    now: float  # CLOCK_MONOTONIC seconds
    started: float  # when the gate started (CLOCK_MONOTONIC): the deadline counts from here
    unit: UnitView | None  # None: systemctl did not answer
    health: Mapping[str, Any] | None  # None: no snapshot (yet)
    health_age_s: float | None
    exits: Sequence[MainExit] = ()  # every run of the daemon that ended in this boot, oldest first


@dataclass(frozen=True, slots=True)
class Commit:
    summary: str


@dataclass(frozen=True, slots=True)
class Wait:
    waiting_for: str  # which check is not yet satisfied, in words
    check: str


@dataclass(frozen=True, slots=True)
class Fail:
    check: str  # gateway.service | watchdog | ready | snapshot | store | drivers
    reason: str
    exit_status: int | None = None


Decision = Commit | Wait | Fail


def decide(inputs: Inputs, config: GateConfig) -> Decision:
    """Commit once every check holds; fail at once on a crash, a restart or a watchdog
    kill; fail at the deadline with the check that was still waited for."""
    unit = inputs.unit
    waited = inputs.now - inputs.started
    # The first run that failed says why, whatever systemd shows of the runs since.
    ended: MainExit | UnitView | None = next((end for end in inputs.exits if end.failed), None)
    if (
        ended is None
        and unit is not None
        and (
            unit.restarts > 0
            or unit.active_state == "failed"
            or unit.sub_state == "auto-restart"
            or (unit.active_since is not None and unit.active_state in ("inactive", "deactivating"))
        )
    ):
        ended = unit
    if ended is not None:
        restarts = unit.restarts if unit is not None else 0
        restarted = f" (restarted {restarts} times)" if restarts else ""
        watchdog = ended.result == "watchdog"
        return Fail(
            "watchdog" if watchdog else UNIT,
            f"{UNIT} {ended.how_it_ended()}{restarted}",
            None if watchdog else ended.exit_status,
        )
    if unit is not None:
        if not unit.condition_met:
            if waited >= config.hold_s:
                return Commit(
                    f"{UNIT} is not configured on this box (no site config): only the boot was checked"
                )
            return Wait("the boot to settle (the gateway is not configured)", "ready")
    pending = _pending(inputs, config)
    if pending is None:
        held = inputs.now - unit.active_since if unit is not None and unit.active_since is not None else 0.0
        if held >= config.hold_s:
            return Commit(f"{UNIT} ready and watched for {held:.0f} s; store committing; drivers started")
        pending = Wait(f"{config.hold_s - held:.0f} s more of WATCHDOG=1", "watchdog")
    if waited >= config.deadline_s:
        return Fail(
            pending.check,
            f"not healthy {config.deadline_s:.0f} s after boot: still waiting for {pending.waiting_for}",
        )
    return pending


def _pending(inputs: Inputs, config: GateConfig) -> Wait | None:
    """The first check not yet satisfied, or None when all are."""
    unit = inputs.unit
    if unit is None:
        return Wait("systemd to report on " + UNIT, UNIT)
    if unit.active_state != "active" or unit.active_since is None:
        return Wait(f"{UNIT} to send READY=1 (it is {unit.active_state}/{unit.sub_state})", "ready")
    if unit.watchdog_s <= 0:
        return Wait(f"{UNIT} to have a WatchdogSec (it has none, so its pings cannot be checked)", "watchdog")
    if unit.last_watchdog is None or inputs.now - unit.last_watchdog > unit.watchdog_s:
        return Wait(f"a WATCHDOG=1 from {UNIT} within {unit.watchdog_s:.0f} s", "watchdog")
    health = inputs.health
    if health is None or inputs.health_age_s is None or inputs.health_age_s > config.snapshot_stale_s:
        return Wait("a fresh health snapshot from the daemon", "snapshot")
    pid = health.get("snapshot", {}).get("pid")
    if pid is not None and unit.main_pid and pid != unit.main_pid:
        return Wait(
            "a health snapshot from the running daemon (this one is from an earlier process)", "snapshot"
        )
    store = health.get("store", {})
    if store.get("full") or store.get("last_error") or store.get("stalled"):
        return Wait("the buffer to commit (" + str(store.get("last_error") or "it is stalled") + ")", "store")
    devices = health.get("devices", {})
    if devices and not store.get("committed_readings"):
        return Wait("the first readings committed to the buffer", "store")
    starting = sorted(name for name, d in devices.items() if d.get("state") == "starting")
    if starting:
        return Wait("drivers to start: " + ", ".join(starting), "drivers")
    return None


def _seconds(text: str) -> float:
    """systemd's own duration words (``30s``, ``1min 30s``, ``infinity``)."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
    total = 0.0
    for word in text.split():
        number = word.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = word[len(number) :] or "s"
        try:
            total += float(number) * units[unit]
        except (ValueError, KeyError):
            return 0.0
    return total
