"""Applies the installed identity, network and SSH settings to the running system, at every boot:
hostname, systemd-networkd files under /run, the Wi-Fi supplicant file, root's authorized_keys.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from .sitefolder import Identity, Interface, Network


def _write_in_place(path: Path, text: str) -> None:
    """For a file bind-mounted from the data partition (/etc/hostname): it cannot be replaced
    by a rename, only rewritten."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def network_section(interface: Interface) -> str:
    lines = ["[Network]"]
    if interface.dhcp:
        lines.append("DHCP=yes")
    if interface.address:
        lines.append(f"Address={interface.address}")
    if interface.gateway:
        lines.append(f"Gateway={interface.gateway}")
    lines += [f"DNS={server}" for server in interface.dns]
    lines.append("LinkLocalAddressing=no")
    return "\n".join(lines) + "\n"


def render_network(network: Network) -> dict[str, str]:
    """File name -> content for /run/systemd/network (sorted before the image's DHCP default)."""
    files = {
        "10-gateway-ethernet.network": "# From network.toml [ethernet], written at boot by import-boot-config.\n"
        "[Match]\nName=eth* en*\n\n" + network_section(network.ethernet)
    }
    if network.wifi is not None:
        files["10-gateway-wifi.network"] = (
            "# From network.toml [wifi].\n[Match]\nName=wlan*\n\n" + network_section(network.wifi.interface)
        )
    return files


def render_wpa_supplicant(network: Network) -> str | None:
    wifi = network.wifi
    if wifi is None:
        return None
    ssid = wifi.ssid.replace("\\", "\\\\").replace('"', '\\"')
    key = f'\tpsk="{wifi.psk}"\n' if wifi.psk else "\tkey_mgmt=NONE\n"
    return f'country={wifi.country}\nctrl_interface=/run/wpa_supplicant\n\nnetwork={{\n\tssid="{ssid}"\n{key}}}\n'


def apply_network(network: Network | None, network_dir: Path, run_dir: Path) -> list[str]:
    for old in network_dir.glob("10-gateway-*.network") if network_dir.is_dir() else []:
        old.unlink()
    wpa = run_dir / "wpa_supplicant-wlan0.conf"
    wpa.unlink(missing_ok=True)
    if network is None:
        return ["network: DHCP on the wired port (no network.toml)"]
    done = []
    for name, text in render_network(network).items():
        _write(network_dir / name, text)
        done.append(f"network: {name}")
    wpa_text = render_wpa_supplicant(network)
    if wpa_text is not None:
        _write(wpa, wpa_text, 0o600)
        done.append(f"wifi: ssid '{network.wifi.ssid if network.wifi else ''}'")
    return done


def apply_identity(identity: Identity | None, hostname_file: Path, set_live: bool = True) -> str | None:
    if identity is None:
        return None
    current = hostname_file.read_text().strip() if hostname_file.is_file() else ""
    if current != identity.hostname:
        _write_in_place(hostname_file, identity.hostname + "\n")
    if set_live and os.geteuid() == 0 and socket.gethostname() != identity.hostname:
        socket.sethostname(identity.hostname)
    return identity.hostname


def apply_ssh_keys(keys: list[str] | None, ssh_dir: Path) -> int:
    """root's authorized_keys on the data partition (sshd reads AuthorizedKeysFile from there)."""
    target = ssh_dir / "authorized_keys" / "root"
    if keys is None:
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    _write(target, "".join(k + "\n" for k in keys), 0o600)
    return len(keys)
