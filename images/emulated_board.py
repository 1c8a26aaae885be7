"""The emulated board of the image tests: the card file, the Pi firmware's boot rules, qemu, SSH.

Shared by ``images/test`` (first boot, site import) and ``images/test-ota`` (A/B updates).
The firmware is played by its documented rules, from the card alone: p1's autoboot.txt names
the boot partition, a one-shot tryboot flag (``tryboot.req`` on p1, what ``reboot '0
tryboot'`` sets on a Pi) is cleared before the boot that uses ``[tryboot]``. Each power-on is one
``qemu-system-aarch64 -M virt`` process with ``-no-reboot``: a reboot, a watchdog reset or a
kill ends it, and the caller decides what the next power-on boots.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

COAP_PORT, SSH_PORT, UPSTREAM_PORT = 15683, 10022, 15684
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: the firmware's one-shot tryboot flag, as the emulator keeps it on the config partition
TRYBOOT_FLAG = "tryboot.req"
#: conditional sections of autoboot.txt that apply on a Pi 4 / CM4 (besides [tryboot])
PI4_SECTIONS = ("all", "pi4")


#: every check a test made: (name, passed, detail)
results: list[tuple[str, bool, str]] = []


def log(message: str, who: str = "test") -> None:
    print(f"{time.strftime('%H:%M:%S')} {who}: {message}", flush=True)


def check(name: str, ok: bool, detail: str = "") -> bool:
    results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def enter_test_netns(script: Path) -> None:
    """Re-run ``script`` in a network namespace with only loopback (unshare -n): the guest
    reaches nothing but what the test starts. Returns in the namespace."""
    if os.environ.get("GATEWAY_IMAGE_TEST_NETNS") != "1":
        os.environ["GATEWAY_IMAGE_TEST_NETNS"] = "1"
        os.execvp("unshare", ["unshare", "-n", "--", sys.executable, str(script.resolve()), *sys.argv[1:]])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.environ["MTOOLS_SKIP_CHECK"] = "1"


class Card:
    """The card image file; partitions are read and written with mtools at their byte offsets."""

    def __init__(self, path: Path):
        self.path = path

    def partitions(self) -> dict[int, tuple[int, int]]:
        table = json.loads(run("sfdisk", "-J", str(self.path)).stdout)["partitiontable"]
        return {
            int(re.sub(r".*?(\d+)$", r"\1", p["node"])): (p["start"], p["size"]) for p in table["partitions"]
        }

    def fat(self, number: int) -> str:
        return f"{self.path}@@{self.partitions()[number][0] * 512}"

    def read(self, number: int, name: str) -> str:
        return run("mtype", "-i", self.fat(number), f"::{name}").stdout

    def exists(self, number: int, name: str) -> bool:
        return (
            subprocess.run(
                ["mdir", "-b", "-i", self.fat(number), f"::{name}"], capture_output=True
            ).returncode
            == 0
        )

    def delete(self, number: int, name: str) -> None:
        run("mdel", "-i", self.fat(number), f"::{name}")

    def listing(self, number: int, directory: str) -> list[str]:
        out = run("mdir", "-b", "-i", self.fat(number), f"::{directory}").stdout
        return sorted(line.rstrip("/").rsplit("/", 1)[-1] for line in out.splitlines() if line.strip())

    def put(self, number: int, source: Path, target: str) -> None:
        run("mcopy", "-o", "-s", "-i", self.fat(number), str(source), f"::{target}")

    def get(self, number: int, name: str, dest: Path) -> None:
        run("mcopy", "-o", "-i", self.fat(number), f"::{name}", str(dest))


def autoboot_partition(text: str, tryboot: bool) -> int:
    """``boot_partition`` as the Pi 4 bootloader reads autoboot.txt: lines under ``[all]`` and
    ``[pi4]`` apply, those under ``[tryboot]`` only in a tryboot, later lines win. Written
    apart from the updater's own parser (images/ota/tryboot.py) on purpose: the test must not
    share the updater's mistakes."""
    section, chosen = "all", None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
        elif line.startswith("boot_partition=") and (
            section in PI4_SECTIONS or (tryboot and section == "tryboot")
        ):
            chosen = int(line.split("=", 1)[1].strip())
    assert chosen is not None, (
        f"no boot_partition for {'a tryboot' if tryboot else 'a normal boot'} in autoboot.txt:\n{text}"
    )
    return chosen


@dataclass(frozen=True, slots=True)
class BootChoice:
    partition: int  # the boot FAT the firmware loads
    tryboot: bool  # the one-shot flag was set (and is now cleared)
    autoboot: str  # autoboot.txt as the firmware read it


def firmware_choose(card: Card) -> BootChoice:
    """What the firmware does at power-on before it loads a kernel: read the tryboot flag and
    autoboot.txt from p1, clear the flag (one try only, whatever happens next), pick the slot."""
    autoboot = card.read(1, "autoboot.txt")
    tryboot = card.exists(1, TRYBOOT_FLAG)
    if tryboot:
        card.delete(1, TRYBOOT_FLAG)
    return BootChoice(autoboot_partition(autoboot, tryboot), tryboot, autoboot)


def boot_files(card: Card, partition: int, work: Path) -> tuple[Path, Path, str]:
    """The kernel, initrd and cmdline.txt the firmware loads from boot partition ``partition``."""
    kernel, initrd = work / "vmlinuz", work / "initrd.img"
    card.get(partition, "vmlinuz", kernel)
    card.get(partition, "initrd.img", initrd)
    cmdline = card.read(partition, "cmdline.txt").strip()
    if kernel.read_bytes()[:2] == b"\x1f\x8b":  # qemu wants the uncompressed Image
        image = work / "Image"
        with open(image, "wb") as out:
            subprocess.run(["zcat", str(kernel)], stdout=out, check=True)
        kernel = image
    return kernel, initrd, cmdline


class Qmp(threading.Thread):
    """Records qemu's QMP events (WATCHDOG, SHUTDOWN with its reason) with the host's time:
    the emulator's own witness of what ended a power-on."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path = path
        self.events: list[tuple[float, dict[str, object]]] = []

    def run(self) -> None:
        deadline = time.monotonic() + 30
        sock = socket.socket(socket.AF_UNIX)
        while True:
            try:
                sock.connect(str(self.path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.1)
        with sock, sock.makefile("rwb") as stream:
            stream.readline()  # the greeting
            stream.write(b'{"execute": "qmp_capabilities"}\n')
            stream.flush()
            for line in stream:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if "event" in message:
                    self.events.append((time.monotonic(), message))

    def named(self, name: str) -> list[dict[str, object]]:
        return [event for _, event in self.events if event.get("event") == name]


class Guest:
    """One power-on of the emulated board; the console goes to a file the test follows."""

    def __init__(self, card: Card, work: Path, name: str):
        self.card, self.work, self.name = card, work, name
        self.console = work / f"console-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.choice: BootChoice | None = None
        self.qmp: Qmp | None = None
        self.killed = False

    def start(self) -> BootChoice:
        self.choice = firmware_choose(self.card)
        kernel, initrd, cmdline = boot_files(self.card, self.choice.partition, self.work)
        self.console.unlink(missing_ok=True)
        qmp_socket = self.work / f"qmp-{self.name}.sock"
        qmp_socket.unlink(missing_ok=True)
        args = [
            "qemu-system-aarch64",
            "-M",
            "virt",
            "-cpu",
            "cortex-a72",
            "-smp",
            "2",
            "-m",
            "1024",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-kernel",
            str(kernel),
            "-initrd",
            str(initrd),
            "-append",
            f"{cmdline} console=ttyAMA0,115200",
            "-drive",
            f"file={self.card.path},format=raw,if=virtio,cache=writeback",
            "-device",
            "i6300esb",
            "-action",
            "watchdog=reset",
            "-object",
            "rng-random,filename=/dev/urandom,id=rng0",
            "-device",
            "virtio-rng-pci,rng=rng0",
            "-netdev",
            f"user,id=n0,hostfwd=udp:127.0.0.1:{COAP_PORT}-:5683,hostfwd=tcp:127.0.0.1:{SSH_PORT}-:22",
            "-device",
            "virtio-net-pci,netdev=n0,romfile=",
            "-serial",
            f"file:{self.console}",
            "-qmp",
            f"unix:{qmp_socket},server=on,wait=off",
        ]
        log(
            f"{self.name}: firmware: {'tryboot, ' if self.choice.tryboot else ''}boot_partition="
            f"{self.choice.partition}; qemu ... append '{cmdline} console=ttyAMA0,115200'"
        )
        self.started = time.monotonic()
        self.killed = False
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=(self.work / f"qemu-{self.name}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.qmp = Qmp(qmp_socket)
        self.qmp.start()
        return self.choice

    def text(self) -> str:
        try:
            raw = self.console.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return ANSI.sub("", raw)  # systemd colours unit names on the console

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            match = regex.search(self.text())
            if match:
                return match
            if self.proc is not None and self.proc.poll() is not None:
                return regex.search(self.text())
            time.sleep(1)
        return None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float) -> int | None:
        """Wait for qemu to end on its own (a reboot or a watchdog reset with -no-reboot)."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Power cut: qemu dies at once; what the guest had not written to the card is lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.killed = True

    def stop(self, timeout: float = 240) -> None:
        """Clean power-off over SSH (the guest syncs its file systems); kill only as a last resort."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            ssh("systemctl poweroff", check=False, timeout=30)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: no power-off after {timeout:.0f} s; killing qemu")
                self.proc.kill()
                self.proc.wait()
        self.proc = None


#: the private key whose public half the test put on the card (set by the test before any ssh)
SSH_KEY: Path | None = None
SSH_OPTIONS = (
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=20",
    "-o",
    "LogLevel=ERROR",
)


def ssh_argv(command: str) -> list[str]:
    assert SSH_KEY is not None, "set emulated_board.SSH_KEY first"
    return ["ssh", "-i", str(SSH_KEY), "-p", str(SSH_PORT), *SSH_OPTIONS, "root@127.0.0.1", command]


def ssh(command: str, check: bool = True, timeout: float = 120, input: str | None = None) -> str:  # noqa: A002
    proc = subprocess.run(
        ssh_argv(command),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"ssh {command!r}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def ssh_put(source: Path, target: str, timeout: float = 900) -> None:
    """Copy a file into the guest (written to target.part, then renamed)."""
    with open(source, "rb") as data:
        proc = subprocess.run(
            ssh_argv(f"cat >'{target}.part' && sync '{target}.part' && mv '{target}.part' '{target}'"),
            stdin=data,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(
            f"copying {source} to the guest's {target}: exit {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )


def ssh_ready(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ssh("echo ok", check=False, timeout=40).strip() == "ok":
                return True
        except subprocess.TimeoutExpired:
            pass
        time.sleep(3)
    return False


def coap_health(timeout: float = 120) -> dict[str, object] | None:
    """GET /health from the host side of the port forward, with libcoap's client (JSON)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run(
            [
                "coap-client-notls",
                "-m",
                "get",
                "-A",
                "50",
                "-B",
                "20",
                f"coap://127.0.0.1:{COAP_PORT}/health",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        body = proc.stdout.strip()
        start = body.find("{")
        if start >= 0:
            try:
                value = json.loads(body[start:])
                if isinstance(value, dict):
                    return value
            except ValueError:
                pass
        time.sleep(3)
    return None
