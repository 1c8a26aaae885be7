"""What an update left on the data partition, and what it means at the next boot.

Pure code over dicts: ``tried.json`` (written after RAUC installed a bundle: which slot and
version will be tried), ``attempt.json`` (written by the commit service in the tried slot: the
check it waits for, or why it failed) and the booted/default slots go in; the outcome the
old or new slot records (``committed`` or ``rolled-back`` with a reason) comes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMMITTED = "committed"
ROLLED_BACK = "rolled-back"

#: attempt.json stages
CHECKING = "checking"
FAILED = "failed"
DONE = "committed"

#: ``check`` of a rollback whose tried slot never ran the commit service
NEVER_REACHED = "never-reached-commit"
WATCHDOG_RESET = "hardware-watchdog"
RESET = "reset"


def tried_record(*, slot: str, version: str, from_slot: str, from_version: str, now: float) -> dict[str, Any]:
    return {
        "slot": slot,
        "version": version,
        "from_slot": from_slot,
        "from_version": from_version,
        "installed_at": now,
        "id": f"{version}@{now:.0f}",
    }


def attempt_record(
    tried: Mapping[str, Any] | None,
    *,
    slot: str,
    version: str,
    stage: str,
    now: float,
    check: str | None = None,
    reason: str | None = None,
    exit_status: int | None = None,
) -> dict[str, Any]:
    return {
        "id": (tried or {}).get("id"),
        "slot": slot,
        "version": version,
        "stage": stage,
        "check": check,
        "reason": reason,
        "exit_status": exit_status,
        "at": now,
    }


def settle(
    tried: Mapping[str, Any] | None,
    attempt: Mapping[str, Any] | None,
    *,
    booted: str,
    default: str,
    watchdog_reset: bool,
    now: float,
) -> dict[str, Any] | None:
    """The outcome of the update that was tried, once the box runs its default slot again
    (or for the first time after the commit); None while there is nothing to settle (no
    update pending, or this is the tried slot before its commit)."""
    if tried is None or booted != default:
        return None
    outcome: dict[str, Any] = {
        "id": tried.get("id"),
        "version": tried.get("version"),
        "slot": tried.get("slot"),
        "from_version": tried.get("from_version"),
        "from_slot": tried.get("from_slot"),
        "installed_at": tried.get("installed_at"),
        "at": now,
        "running_slot": booted,
    }
    if booted == tried.get("slot"):
        return outcome | {"result": COMMITTED, "check": None, "reason": None, "exit_status": None}
    mine = attempt if attempt is not None and attempt.get("id") == tried.get("id") else None
    if mine is None:
        return outcome | {
            "result": ROLLED_BACK,
            "check": NEVER_REACHED,
            "exit_status": None,
            "reason": f"slot {tried.get('slot')} never reached the commit: the firmware, kernel, initramfs "
            "or systemd of the new version did not get as far as gateway-commit.service",
        }
    if mine.get("stage") == FAILED:
        return outcome | {
            "result": ROLLED_BACK,
            "check": mine.get("check"),
            "exit_status": mine.get("exit_status"),
            "reason": mine.get("reason") or "a check failed",
        }
    if mine.get("stage") == DONE:
        return outcome | {
            "result": ROLLED_BACK,
            "check": "commit",
            "exit_status": None,
            "reason": "the commit was recorded but autoboot.txt still names slot "
            f"{default} (a power cut during the commit?)",
        }
    waiting = mine.get("reason") or "the checks"
    if watchdog_reset:
        return outcome | {
            "result": ROLLED_BACK,
            "check": WATCHDOG_RESET,
            "exit_status": None,
            "reason": f"the new version hung and the hardware watchdog reset the box "
            f"while waiting for {waiting}",
        }
    return outcome | {
        "result": ROLLED_BACK,
        "check": RESET,
        "exit_status": None,
        "reason": f"the tried boot ended without a result (hardware watchdog reset or power "
        f"loss) while waiting for {waiting}",
    }
