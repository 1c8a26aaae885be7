"""The Pi firmware's A/B boot as values: autoboot.txt, the two slots, committed or not.

Pure code over text (no files, no processes): ``backend.py`` and the commit service do the
I/O. The firmware boots ``[all] boot_partition`` (the *default*); a one-shot
``reboot '0 tryboot'`` boots ``[tryboot] boot_partition`` once. A boot is *uncommitted* when the
partition it came from is not the default, as Rugix defines it: nothing here reads the
firmware's tryboot flag, so a card rolled back by a power cut or a watchdog reset is judged
the same way as one that was never tried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

#: RAUC bootname -> (boot FAT partition, system partition), on the card's MBR
SLOTS: dict[str, tuple[int, int]] = {"A": (2, 5), "B": (3, 6)}
BOOTNAMES = tuple(SLOTS)


class TrybootError(Exception):
    """autoboot.txt or the running system says something this backend cannot act on."""


def boot_partition_of(bootname: str) -> int:
    try:
        return SLOTS[bootname][0]
    except KeyError:
        raise TrybootError(f"unknown slot {bootname!r}: this card has slots A and B") from None


def bootname_of(boot_partition: int) -> str:
    for name, (boot, _system) in SLOTS.items():
        if boot == boot_partition:
            return name
    raise TrybootError(f"boot_partition={boot_partition} is neither slot A (2) nor slot B (3)")


def other(bootname: str) -> str:
    boot_partition_of(bootname)
    return "B" if bootname == "A" else "A"


@dataclass(frozen=True, slots=True)
class Autoboot:
    """What the firmware reads from p1's autoboot.txt."""

    default: str  # bootname of [all] boot_partition
    tryboot: str  # bootname of [tryboot] boot_partition

    def render(self) -> str:
        return (
            "# Read by the Raspberry Pi 4/5 bootloader from this first FAT partition. It boots\n"
            "# [all] boot_partition (the committed slot); a one-shot `reboot '0 tryboot'` boots\n"
            "# [tryboot] boot_partition once. Rewritten by the updater (RAUC's tryboot backend):\n"
            "# never edit it by hand on a box in service.\n"
            "[all]\n"
            "tryboot_a_b=1\n"
            f"boot_partition={boot_partition_of(self.default)}\n"
            "[tryboot]\n"
            f"boot_partition={boot_partition_of(self.tryboot)}\n"
        )


_SECTION = re.compile(r"\[\s*([A-Za-z0-9_]+)\s*\]")


def parse_autoboot(text: str) -> Autoboot:
    """Read ``[all]`` and ``[tryboot]`` ``boot_partition`` the way the firmware does: later
    lines win, other sections (``[pi4]``, ``[none]``) and unknown keys are ignored.

    Without a ``[tryboot]`` partition, the other slot is tried. Without an ``[all]`` one the
    firmware would not boot from either slot, so that is an error."""
    section = "all"
    found: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if heading := _SECTION.fullmatch(line):
            section = heading.group(1).lower()
            continue
        key, sep, value = line.partition("=")
        if not sep or key.strip() != "boot_partition" or section not in ("all", "tryboot"):
            continue
        try:
            found[section] = int(value.strip(), 0)
        except ValueError:
            raise TrybootError(
                f"autoboot.txt line {number}: boot_partition={value.strip()!r} is not a partition number"
            ) from None
    if "all" not in found:
        raise TrybootError(
            "autoboot.txt has no [all] boot_partition: the firmware would not know which slot to boot"
        )
    default = bootname_of(found["all"])
    tryboot = bootname_of(found["tryboot"]) if "tryboot" in found else other(default)
    return Autoboot(default, tryboot)


def booted_slot(cmdline: str, dt_partition: int | None = None) -> str:
    """The slot the running system came from.

    The boot FAT's own cmdline.txt names it (``gateway.slot=A``), and its ``root=PARTUUID=…-05``
    or ``-06`` says the same; the Pi firmware also reports the boot partition it loaded in the
    device tree (``chosen/bootloader/partition``), used only when the kernel command line
    names no slot (an old EEPROM may not report it: rauc-community#181)."""
    words = cmdline.split()
    for word in words:
        if word.startswith("gateway.slot="):
            name = word.split("=", 1)[1]
            boot_partition_of(name)
            return name
    for word in words:
        if match := re.fullmatch(r"root=PARTUUID=[0-9a-fA-F]{8}-0?(\d+)", word):
            system = int(match.group(1))
            for name, (_boot, part) in SLOTS.items():
                if part == system:
                    return name
    if dt_partition is not None:
        return bootname_of(dt_partition)
    raise TrybootError(
        "cannot tell the booted slot: the kernel command line has neither "
        "gateway.slot= nor root=PARTUUID=…-05/-06"
    )


class BootState(Enum):
    COMMITTED = "committed"  # booted from the default slot
    UNCOMMITTED = "uncommitted"  # booted from the tried slot: the commit service decides


def boot_state(autoboot: Autoboot, booted: str) -> BootState:
    return BootState.COMMITTED if booted == autoboot.default else BootState.UNCOMMITTED


def commit(autoboot: Autoboot, booted: str) -> Autoboot:
    """The autoboot.txt that makes the running slot the default (the other becomes the
    tried one, for the next update)."""
    return Autoboot(default=booted, tryboot=other(booted))


def try_next(autoboot: Autoboot, target: str) -> Autoboot:
    """The autoboot.txt for trying ``target`` once; the default is never changed here."""
    if target == autoboot.default:
        return autoboot
    return Autoboot(default=autoboot.default, tryboot=target)


def parse_states(text: str) -> dict[str, str]:
    """The slot-state file (``A=good``, ``B=bad``): what RAUC last recorded per slot."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name in SLOTS and value in ("good", "bad"):
            states[name] = value
    return states


def render_states(states: dict[str, str]) -> str:
    return "".join(f"{name}={states[name]}\n" for name in BOOTNAMES if name in states)
