"""Where commissioning reads and writes, on the device and (through environment variables) in tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Paths:
    card: Path  # the site folder on the config FAT partition (gateway/)
    installed: Path  # the installed settings on the data partition (/etc/gateway)
    run: Path  # per-boot scratch and the import result (/run/gateway-image)
    ssh: Path  # host key and authorized_keys/ on the data partition
    hostname_file: Path  # /etc/hostname, bound from the data partition
    network_dir: Path  # generated systemd-networkd files (/run/systemd/network)
    release_file: Path  # /etc/gateway-image-release, written by images/build
    gateway_bin: str  # the gateway CLI that validates (`gateway check`)
    owner: str  # the user the daemon runs as; installed files belong to it

    @classmethod
    def from_environment(cls) -> Paths:
        env = os.environ.get
        return cls(
            card=Path(env("GATEWAY_CARD_DIR", "/boot/config/gateway")),
            installed=Path(env("GATEWAY_ETC_DIR", "/etc/gateway")),
            run=Path(env("GATEWAY_RUN_DIR", "/run/gateway-image")),
            ssh=Path(env("GATEWAY_SSH_DIR", "/data/ssh")),
            hostname_file=Path(env("GATEWAY_HOSTNAME_FILE", "/etc/hostname")),
            network_dir=Path(env("GATEWAY_NETWORK_DIR", "/run/systemd/network")),
            release_file=Path(env("GATEWAY_RELEASE_FILE", "/etc/gateway-image-release")),
            gateway_bin=env("GATEWAY_BIN", "/opt/gateway/bin/gateway"),
            owner=env("GATEWAY_USER", "gateway"),
        )

    @property
    def result_file(self) -> Path:
        return self.run / "import.json"

    @property
    def report_file(self) -> Path:
        return self.card / "report.txt"
