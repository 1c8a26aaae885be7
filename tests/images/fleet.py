"""Boxes running the real gateway-hawkbit client for the fleet test and bench: each its own p1
(autoboot.txt), data partition and /etc/gateway, with stand-ins for `rauc install` (or the host's
real RAUC through a Card), and the reboot into the tried slot done by the real gateway-commit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ota import gate, tryboot
from ota.commit import Commit
from ota.files import Paths

from . import rauc_host

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "images/rootfs/usr/lib/gateway-image/gateway-hawkbit"
LIB = REPO / "images"
GATE = gate.GateConfig(hold_s=1, deadline_s=2)

# Stands in for `rauc install` on the boxes without a RAUC service: records what it was given,
# marks slot B to be tried (the tryboot backend's set-primary, as RAUC calls it) and writes
# tried.json as RAUC's post-install handler does.
RECORDING_INSTALL = """#!{python}
import hashlib, json, os, sys, time
sys.path.insert(0, {lib!r})
from ota import records
from ota.backend import Backend
from ota.files import Paths
bundle = sys.argv[1]
digest = hashlib.sha256(open(bundle, "rb").read()).hexdigest()
with open(os.environ["BOX_ROOT"] + "/installs.log", "a") as f:
    f.write(digest + "\\n")
paths = Paths.from_env()
Backend(paths).set_primary("B")
tried = records.tried_record(slot="B", version=os.environ["BOX_BUNDLE_VERSION"], from_slot="A",
                             from_version="1.0", now=time.time())
paths.data.mkdir(parents=True, exist_ok=True)
(paths.data / "tried.json").write_text(json.dumps(tried))
"""

# `rauc status mark-good|mark-bad [other]` for the boxes without a RAUC service: the backend.
BACKEND_RAUC = """#!{python}
import sys
sys.path.insert(0, {lib!r})
from ota import tryboot
from ota.backend import Backend
from ota.files import Paths
b = Backend(Paths.from_env())
_, verb, *which = sys.argv[1:]
slot = tryboot.other(b.booted()) if which == ["other"] else b.booted()
b.set_state(slot, "good" if verb == "mark-good" else "bad")
"""


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def with_env(path: Path, env: dict[str, str], argv: list[str]) -> Path:
    exports = "".join(f"export {k}='{v}'\n" for k, v in env.items() if k.startswith(("GATEWAY_", "DBUS_")))
    return executable(path, "#!/bin/sh\n" + exports + " ".join(argv) + ' "$@"\n')


class Box:
    """One cabinet: p1 (autoboot.txt), the data partition, /etc/gateway, and its client process."""

    def __init__(
        self,
        root: Path,
        device_id: str,
        server: str,
        card: rauc_host.Card | None = None,
        install: str | None = None,
    ):
        self.root, self.id, self.card, self.install = root, device_id, card, install
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        etc = root / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "identity.toml").write_text(f'id = "{device_id}"\n')
        (etc / "updates.toml").write_text(
            f'[hawkbit]\nserver = "{server}"\ntenant = "DEFAULT"\ntarget_token = "token-{device_id}"\n'
        )
        self.state = root / "state"
        self.state.mkdir(exist_ok=True)
        if card is None:
            (root / "config").mkdir(exist_ok=True)
            (root / "config/autoboot.txt").write_text((LIB / "boot/autoboot.txt").read_text())
            (root / "release").write_text("IMAGE_VERSION=1.0\n")
            (root / "data/update").mkdir(parents=True, exist_ok=True)
        self.boot_cmdline("A")

    @property
    def paths(self) -> Paths:
        return Paths(
            config=self.root / "config",
            cmdline=self.root / "cmdline",
            dt_partition=self.root / "no-dt",
            data=self.root / "data/update",
        )

    @property
    def env(self) -> dict[str, str]:
        base = (
            self.card.env
            if self.card is not None
            else {
                **os.environ,
                "GATEWAY_TRYBOOT_DIR": str(self.paths.config),
                "GATEWAY_TRYBOOT_CMDLINE": str(self.paths.cmdline),
                "GATEWAY_TRYBOOT_DT_PARTITION": str(self.paths.dt_partition),
                "GATEWAY_UPDATE_DIR": str(self.paths.data),
                "GATEWAY_IMAGE_RELEASE": str(self.root / "release"),
            }
        )
        install = self.install or (
            "rauc install"
            if self.card is not None
            else str(
                executable(
                    self.root / "install", RECORDING_INSTALL.format(python=sys.executable, lib=str(LIB))
                )
            )
        )
        return {
            **base,
            "GATEWAY_IMAGE_LIB": str(LIB),
            "GATEWAY_HAWKBIT_CONFIG": str(self.root / "etc/updates.toml"),
            "GATEWAY_HAWKBIT_DIR": str(self.root / "data/update/hawkbit"),
            "GATEWAY_DATA_DIR": str(self.state),
            "GATEWAY_HAWKBIT_INSTALL": install,
            "GATEWAY_HAWKBIT_REBOOT": f"touch {self.root / 'rebooted'}",
            "BOX_ROOT": str(self.root),
            "BOX_BUNDLE_VERSION": "2.0.0",
            "PYTHONUNBUFFERED": "1",
        }

    def boot_cmdline(self, slot: str) -> None:
        part = {"A": 5, "B": 6}[slot]
        self.paths.cmdline.write_text(
            f"root=PARTUUID=6a7e0001-0{part} rootfstype=erofs ro gateway.slot={slot}\n"
        )

    def start(self) -> None:
        self.starts += 1
        log = open(self.root / f"client-{self.starts}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(CLIENT), "run"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.root.glob("client-*.log")))

    @property
    def rebooted(self) -> bool:
        return (self.root / "rebooted").exists()

    def partial_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.root / "data/update/hawkbit").glob("action-*.raucb"))

    def commit_service(self, slot: str) -> Commit:
        """gateway-commit as it runs at boot in ``slot``: the tryboot backend through RAUC."""
        if self.card is not None:
            rauc = with_env(self.root / "rauc-cli", self.card.env, ["rauc"])
        else:
            backend = executable(
                self.root / "backend-rauc", BACKEND_RAUC.format(python=sys.executable, lib=str(LIB))
            )
            rauc = with_env(self.root / "rauc-cli", self.env, [str(backend)])
        release = self.root / f"release-{slot}"
        release.write_text("IMAGE_VERSION=" + ("2.0.0" if slot == "B" else "1.0") + "\n")
        return Commit(
            paths=self.paths,
            data_dir=self.state,
            release=release,
            watchdog_status=self.root / "none",
            config=GATE,
            interval_s=0.1,
            systemctl=["true"],
            rauc=[str(rauc)],
            reboot=["true"],
        )

    def reboot_into_tried_slot(self, healthy: bool) -> None:
        """The reboot the client asked for: the firmware's one tryboot of B, then gateway-commit
        commits B (its checks passed) or fails it and the box boots A, whose gateway-commit
        records the rollback and its reason."""
        self.stop()
        (self.root / "rebooted").unlink()
        assert tryboot.parse_autoboot(self.paths.autoboot.read_text()).tryboot == "B"
        self.boot_cmdline("B")
        if self.card is not None:
            self.card.boot("B")
        commit = self.commit_service("B")
        tried = json.loads((self.paths.data / "tried.json").read_text())
        if healthy:
            assert commit.commit("B", tried, "2.0.0", "test: the gate passed") == 0
            assert tryboot.parse_autoboot(self.paths.autoboot.read_text()).default == "B"
        else:
            commit.fail(
                "B", gate.Fail("gateway.service", "gateway.service exited with status 3", 3), tried, "2.0.0"
            )
            self.boot_cmdline("A")
            if self.card is not None:
                self.card.boot("A")
            assert self.commit_service("A").run() == 0
        self.start()
