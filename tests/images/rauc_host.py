"""The host's real RAUC (bookworm 1.8) on a scratch card: slot files, a private D-Bus, the
image's system.conf pointed at them, and a fake images/out build for images/bundle.

Plain bundles only: the host kernel has no device-mapper, so verity bundles install only in
the guest. Needs root (RAUC loop-mounts the bundle), rauc, dbus-daemon, mksquashfs,
mkfs.erofs, mkfs.vfat and mcopy; ``missing()`` says what is absent, for a skip reason.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
TOOLS = ("rauc", "dbus-daemon", "mksquashfs", "mkfs.erofs", "mkfs.vfat", "mcopy", "openssl")
SLOT_MIB = {"rootfs": 16, "boot": 8}

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


def missing() -> str | None:
    if os.geteuid() != 0:
        return "RAUC installs loop-mount the bundle: run as root"
    absent = [t for t in TOOLS if shutil.which(t) is None and not Path("/usr/sbin", t).exists()]
    if absent:
        return (
            "missing host tools: "
            + ", ".join(absent)
            + " (apt-get install rauc squashfs-tools erofs-utils dosfstools mtools)"
        )
    if not Path("/dev/loop-control").exists():
        return "no loop devices on this host"
    return None


def make_fat(path: Path, mib: int, label: str, files: dict[str, str]) -> None:
    path.unlink(missing_ok=True)
    subprocess.run(
        ["mkfs.vfat", "-C", "-n", label, str(path), str(mib * 1024)], check=True, capture_output=True
    )
    src = path.with_suffix(".files")
    src.mkdir(exist_ok=True)
    for name, text in files.items():
        (src / name).write_text(text)
        subprocess.run(["mcopy", "-i", str(path), "-o", str(src / name), f"::{name}"], check=True)


def fake_build(out: Path, version: str, payload_bytes: int = 0) -> None:
    """What images/build leaves in images/out, shrunk: the system erofs and both boot FATs
    (``payload_bytes`` of random data in the system, for a bundle that takes a while to fetch)."""
    out.mkdir(parents=True, exist_ok=True)
    name = f"gateway-{version}"
    root = out / "root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/gateway-image-release").write_text(f"IMAGE_VERSION={version}\n")
    if payload_bytes:
        (root / "payload").write_bytes(os.urandom(payload_bytes))
    subprocess.run(["mkfs.erofs", "--quiet", str(out / f"{name}.system.erofs"), str(root)], check=True)
    for slot, part in (("A", 5), ("B", 6)):
        make_fat(
            out / f"{name}.boot-{slot}.vfat",
            4,
            f"BOOT-{slot}",
            {
                "cmdline.txt": f"root=PARTUUID=6a7e0001-0{part} rootfstype=erofs ro gateway.slot={slot}\n",
                "version.txt": version + "\n",
            },
        )
    (out / f"{name}.img").write_bytes(b"")
    (out / "gateway.img").unlink(missing_ok=True)
    (out / "gateway.img").symlink_to(f"{name}.img")


def make_key(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=someone else",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class Card:
    """The slots, p1 and the data directory of one emulated card, and RAUC serving it."""

    root: Path
    keyring: Path
    service: subprocess.Popen[bytes] | None = None
    bus: subprocess.Popen[bytes] | None = None
    log: list[Path] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def cmdline(self) -> Path:
        return self.root / "cmdline"

    def slot(self, name: str) -> Path:
        return self.root / "slots" / name

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={self.root / 'bus'}",
            "GATEWAY_IMAGE_LIB": str(IMAGES),
            "GATEWAY_TRYBOOT_DIR": str(self.config),
            "GATEWAY_TRYBOOT_CMDLINE": str(self.cmdline),
            "GATEWAY_TRYBOOT_DT_PARTITION": str(self.root / "no-dt"),
            "GATEWAY_UPDATE_DIR": str(self.root / "data/update"),
            "GATEWAY_IMAGE_RELEASE": str(self.root / "release"),
        }

    def prepare(self) -> None:
        self.config.mkdir(parents=True)
        shutil.copy(IMAGES / "boot/autoboot.txt", self.config / "autoboot.txt")
        (self.root / "slots").mkdir()
        for cls, mib in SLOT_MIB.items():
            for i in (0, 1):
                with open(self.slot(f"{cls}.{i}"), "wb") as f:
                    f.truncate(mib << 20)
        (self.root / "mnt").mkdir()
        (self.root / "data").mkdir()
        (self.root / "release").write_text("IMAGE_VERSION=1.0\n")
        conf = (IMAGES / "rootfs/etc/rauc/system.conf").read_text()
        devices = {"05": "rootfs.0", "06": "rootfs.1", "02": "boot.0", "03": "boot.1"}
        conf = re.sub(
            r"/dev/disk/by-partuuid/6a7e0001-(0\d)", lambda m: str(self.slot(devices[m.group(1)])), conf
        )
        conf = conf.replace("/etc/rauc/keyring.pem", str(self.keyring))
        conf = conf.replace("/usr/lib/gateway-image/", str(IMAGES / "rootfs/usr/lib/gateway-image") + "/")
        conf = conf.replace("/data/rauc/status.raucs", str(self.root / "data/status.raucs"))
        conf = conf.replace("[system]\n", f"[system]\nmountprefix={self.root / 'mnt'}\n")
        (self.root / "system.conf").write_text(conf)
        (self.root / "bus.conf").write_text(BUS_CONF.format(socket=self.root / "bus"))

    def boot(self, slot: str) -> None:
        """Power on into ``slot``: its cmdline, then the bus and RAUC's service."""
        self.shutdown()
        part = {"A": 5, "B": 6}[slot]
        self.cmdline.write_text(f"root=PARTUUID=6a7e0001-0{part} rootfstype=erofs ro gateway.slot={slot}\n")
        (self.root / "bus").unlink(missing_ok=True)
        self.bus = subprocess.Popen(["dbus-daemon", "--nofork", f"--config-file={self.root / 'bus.conf'}"])
        deadline = time.monotonic() + 20
        while not (self.root / "bus").exists():
            assert time.monotonic() < deadline, "private dbus-daemon did not start"
            time.sleep(0.05)
        log = self.root / f"rauc-service-{len(self.log)}.log"
        self.log.append(log)
        self.service = subprocess.Popen(
            ["rauc", "service", f"--conf={self.root / 'system.conf'}", f"--override-boot-slot={slot}"],
            env=self.env,
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
        )
        while self.rauc("status", check=False).returncode != 0:
            assert self.service.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "rauc service did not answer"
            time.sleep(0.1)

    def rauc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["rauc", *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(
                f"rauc {' '.join(args)} failed: {done.stdout}{done.stderr}\n"
                + "".join(p.read_text() for p in self.log)
            )
        return done

    def shutdown(self) -> None:
        for proc in (self.service, self.bus):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.service = self.bus = None
