"""RAUC's custom bootloader backend for the Pi firmware's tryboot: the commands RAUC runs.

RAUC calls ``<handler> get-primary | set-primary <slot> | get-state <slot> |
set-state <slot> good|bad | get-current`` and reads one word from stdout (exit 0) or treats any
other exit as a failure. The decisions are in ``tryboot.py``; this module reads and writes p1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import tryboot
from .files import Paths, read_dt_partition, write_atomic


def log(**fields: object) -> None:
    print("rauc-tryboot " + " ".join(f"{k}={v}" for k, v in fields.items()), file=sys.stderr)


class Backend:
    def __init__(self, paths: Paths):
        self.paths = paths

    def autoboot(self) -> tryboot.Autoboot:
        try:
            text = self.paths.autoboot.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise tryboot.TrybootError(f"cannot read {self.paths.autoboot}: {exc.strerror}") from None
        try:
            return tryboot.parse_autoboot(text)
        except tryboot.TrybootError as exc:
            raise tryboot.TrybootError(f"{self.paths.autoboot}: {exc}") from None

    def booted(self) -> str:
        try:
            cmdline = self.paths.cmdline.read_text()
        except OSError:
            cmdline = ""
        return tryboot.booted_slot(cmdline, read_dt_partition(self.paths.dt_partition))

    def states(self) -> dict[str, str]:
        try:
            return tryboot.parse_states(self.paths.slot_states.read_text())
        except OSError:
            return {}

    def _record_state(self, slot: str, state: str) -> None:
        states = self.states()
        if states.get(slot) != state:
            states[slot] = state
            write_atomic(self.paths.slot_states, tryboot.render_states(states))

    def _write_autoboot(self, new: tryboot.Autoboot, old: tryboot.Autoboot) -> None:
        if new != old:
            write_atomic(self.paths.autoboot, new.render())

    def commit_if_tried(self, slot: str) -> bool:
        """Make ``slot`` the default if it is the running, uncommitted one."""
        current = self.autoboot()
        booted = self.booted()
        if slot != booted or tryboot.boot_state(current, booted) is tryboot.BootState.COMMITTED:
            return False
        self._write_autoboot(tryboot.commit(current, booted), current)
        self.paths.tryboot_request.unlink(missing_ok=True)
        log(event="committed", slot=slot, boot_partition=tryboot.boot_partition_of(slot))
        return True

    # -- RAUC's commands -----------------------------------------------------------------

    def get_primary(self) -> str:
        return self.autoboot().default

    def get_current(self) -> str:
        return self.booted()

    def get_state(self, slot: str) -> str:
        tryboot.boot_partition_of(slot)
        return "bad" if self.states().get(slot) == "bad" else "good"

    def set_state(self, slot: str, state: str) -> None:
        tryboot.boot_partition_of(slot)
        if state not in ("good", "bad"):
            raise tryboot.TrybootError(f"set-state: {state!r} is neither good nor bad")
        self._record_state(slot, state)
        if state == "good":  # `rauc status mark-good` in the tried slot is the commit
            self.commit_if_tried(slot)
        elif slot == tryboot.other(self.booted()):
            # an install into the other slot begins (or it was marked bad): never try it
            self.paths.tryboot_request.unlink(missing_ok=True)
        log(event="set-state", slot=slot, state=state)

    def set_primary(self, slot: str) -> None:
        tryboot.boot_partition_of(slot)
        booted = self.booted()
        if slot == booted:  # `rauc status mark-active` on the running slot: commit it
            self._record_state(slot, "good")
            self.commit_if_tried(slot)
            return
        current = self.autoboot()
        self._record_state(slot, "good")
        if slot == current.default:  # back to the committed slot: nothing left to try
            self.paths.tryboot_request.unlink(missing_ok=True)
            log(event="set-primary", slot=slot, tryboot="none")
            return
        self._write_autoboot(tryboot.try_next(current, slot), current)
        write_atomic(self.paths.tryboot_request, slot + "\n")
        log(event="set-primary", slot=slot, tryboot=tryboot.boot_partition_of(slot), default=current.default)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    backend = Backend(Paths.from_env())
    try:
        match args:
            case ["get-primary"]:
                print(backend.get_primary())
            case ["get-current"]:
                print(backend.get_current())
            case ["get-state", slot]:
                print(backend.get_state(slot))
            case ["set-state", slot, state]:
                backend.set_state(slot, state)
            case ["set-primary", slot]:
                backend.set_primary(slot)
            case _:
                log(error="usage", args=" ".join(args) or "none")
                print(
                    "usage: rauc-tryboot-backend get-primary | get-current | get-state SLOT | "
                    "set-state SLOT good|bad | set-primary SLOT",
                    file=sys.stderr,
                )
                return 2
    except (tryboot.TrybootError, OSError) as exc:
        log(error=f'"{exc}"', command=" ".join(args))
        return 1
    return 0
