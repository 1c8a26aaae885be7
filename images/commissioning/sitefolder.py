"""The site folder's files: which are secrets, how the card's copy is merged over the installed one
for checking, and the image's own files (identity.toml, network.toml, ssh.pub) validated with lines.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ota import hawkbit_config

from .findings import Finding, key_line, line_from_message, table_line

SITE_CONFIG = "gateway.toml"
IDENTITY = "identity.toml"
NETWORK = "network.toml"
SSH_KEYS = "ssh.pub"
UPDATES = hawkbit_config.FILE_NAME  # updates.toml: the fleet's hawkBit-compatible server
CARD_NAME = "gateway"  # how a technician sees the folder on the card

#: Files that hold keys or passwords: installed readable only by the gateway user, then removed
#: from the card (anyone can pull an SD card out of a cabinet). network.toml joins them when
#: it carries a Wi-Fi password.
SECRET_PATTERNS = ("*credentials*.toml", "*keys*.toml", "*.key", "*.pem")
#: Files on the card that are not settings.
IGNORED_PATTERNS = ("report.txt", "*.example", "README*", ".*", "System Volume Information")

_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com)\s+[A-Za-z0-9+/=]{16,}(\s.*)?$"
)


def is_ignored(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED_PATTERNS)


def is_secret(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, pattern) for pattern in SECRET_PATTERNS)


def card_files(card: Path) -> list[str]:
    """Relative paths of the settings files on the card (examples, report and dotfiles skipped)."""
    found: list[str] = []
    for path in sorted(card.rglob("*")):
        rel = path.relative_to(card)
        if any(is_ignored(part) for part in rel.parts) or not path.is_file():
            continue
        found.append(rel.as_posix())
    return found


@dataclass(slots=True)
class Staging:
    """The folder ``gateway check`` sees: installed settings with the card's files on top."""

    root: Path
    origins: dict[str, str] = field(default_factory=dict)  # rel path -> name shown to a technician
    from_card: set[str] = field(default_factory=set)

    def display(self, rel: str) -> str:
        return self.origins.get(rel, f"{CARD_NAME}/{rel}")

    def rewrite(self, text: str) -> str:
        """Replace every staging path in a message by the file the technician knows."""
        prefix = re.escape(str(self.root)) + r"/([^\s:'\"),]+)"
        text = re.sub(prefix, lambda m: self.display(m.group(1)), text)
        return text.replace(str(self.root), CARD_NAME)


def stage(card: Path, installed: Path, root: Path, rules_dir: str = "rules") -> Staging:
    """Copy installed settings, then the card's files over them, into ``root``.

    Files missing on the card (above all the credentials, removed after the first import) keep
    their installed version, so a config naming them by a relative path stays valid. A rules
    directory on the card replaces the installed one whole, so deleting a rule file on the
    laptop deletes it on the box.
    """
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    staging = Staging(root)
    card_list = card_files(card) if card.is_dir() else []
    card_has_rules = any(rel.startswith(rules_dir + "/") for rel in card_list) or (card / rules_dir).is_dir()
    if installed.is_dir():
        for path in sorted(installed.rglob("*")):
            rel = path.relative_to(installed).as_posix()
            if not path.is_file() or (card_has_rules and rel.startswith(rules_dir + "/")):
                continue
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            staging.origins[rel] = f"{installed}/{rel} (installed earlier)"
    if card_has_rules:
        (root / rules_dir).mkdir(parents=True, exist_ok=True)
    for rel in card_list:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(card / rel, target)
        staging.origins[rel] = f"{CARD_NAME}/{rel}"
        staging.from_card.add(rel)
    for path in root.rglob("*"):
        # The gateway refuses credentials other users can read; so do we, from the start.
        path.chmod(0o700 if path.is_dir() else (0o600 if is_secret(path.name) else 0o644))
    return staging


def rules_directory(site_config: Path) -> str:
    """The ``[rules] directory`` of a site config, relative to it ('rules' when unreadable)."""
    try:
        raw = tomllib.loads(site_config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "rules"
    rules = raw.get("rules")
    directory = rules.get("directory") if isinstance(rules, dict) else None
    return directory.strip("/") if isinstance(directory, str) and not directory.startswith("/") else "rules"


def _load(path: Path, shown: str, findings: list[Finding]) -> tuple[dict[str, object], str] | None:
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text), text
    except UnicodeDecodeError:
        findings.append(Finding(shown, "is not UTF-8 text; save it as UTF-8"))
    except tomllib.TOMLDecodeError as exc:
        findings.append(Finding(shown, f"malformed TOML: {exc}", line_from_message(str(exc))))
    except OSError as exc:
        findings.append(Finding(shown, f"cannot be read: {exc.strerror}"))
    return None


@dataclass(frozen=True, slots=True)
class Identity:
    gateway_id: str

    @property
    def hostname(self) -> str:
        return self.gateway_id.lower()


def check_identity(staging: Staging, findings: list[Finding]) -> Identity | None:
    """identity.toml: ``id`` names the box (hostname) and must equal ``[gateway] id``."""
    path = staging.root / IDENTITY
    if not path.is_file():
        return None
    shown = staging.display(IDENTITY)
    loaded = _load(path, shown, findings)
    if loaded is None:
        return None
    raw, text = loaded
    for key in raw:
        if key not in ("id", "enrolment_token"):
            findings.append(
                Finding(shown, f"unknown key '{key}' (known: id, enrolment_token)", key_line(text, "", key))
            )
    gateway_id = raw.get("id")
    if not isinstance(gateway_id, str) or not _HOSTNAME.match(gateway_id.lower()):
        findings.append(
            Finding(
                shown,
                "id must be text of letters, digits and '-' (it becomes the hostname), "
                f'e.g. id = "cabinet-17"; got {gateway_id!r}',
                key_line(text, "", "id"),
            )
        )
        return None
    site = staging.root / SITE_CONFIG
    try:
        site_raw = tomllib.loads(site.read_text(encoding="utf-8"))
        site_text = site.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return Identity(gateway_id)  # gateway check reports the site config itself
    table = site_raw.get("gateway")
    site_id = table.get("id") if isinstance(table, dict) else None
    if isinstance(site_id, str) and site_id != gateway_id:
        findings.append(
            Finding(
                staging.display(SITE_CONFIG),
                f"[gateway] id '{site_id}' differs from id '{gateway_id}' in {shown}; make them the same",
                key_line(site_text, "gateway", "id"),
            )
        )
    return Identity(gateway_id)


@dataclass(frozen=True, slots=True)
class Interface:
    dhcp: bool = True
    address: str | None = None  # "192.168.10.17/24"
    gateway: str | None = None
    dns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Wifi:
    ssid: str
    psk: str | None
    country: str
    interface: Interface


@dataclass(frozen=True, slots=True)
class Network:
    ethernet: Interface = Interface()
    wifi: Wifi | None = None

    @property
    def has_secret(self) -> bool:
        return self.wifi is not None and self.wifi.psk is not None


def _interface(
    raw: dict[str, object], table: str, text: str, shown: str, findings: list[Finding]
) -> Interface:
    def bad(key: str, message: str) -> None:
        findings.append(Finding(shown, f"[{table}] {key}: {message}", key_line(text, table, key)))

    known = {"dhcp", "address", "gateway", "dns"} | ({"ssid", "psk", "country"} if table == "wifi" else set())
    for key in raw:
        if key not in known:
            bad(key, f"unknown key (known: {', '.join(sorted(known))})")
    dhcp = raw.get("dhcp", True)
    if not isinstance(dhcp, bool):
        bad("dhcp", "must be true or false")
        dhcp = True
    address = raw.get("address")
    gateway = raw.get("gateway")
    dns = raw.get("dns", [])
    if address is not None:
        try:
            ipaddress.ip_interface(str(address))
            if "/" not in str(address):
                raise ValueError
        except ValueError:
            bad("address", f"'{address}' is not an address with prefix length, e.g. \"192.168.10.17/24\"")
    if gateway is not None:
        try:
            ipaddress.ip_address(str(gateway))
        except ValueError:
            bad("gateway", f"'{gateway}' is not an IP address")
    if not isinstance(dns, list) or not all(isinstance(d, str) for d in dns):
        bad("dns", 'must be a list of addresses, e.g. ["192.168.10.1"]')
        dns = []
    else:
        for server in dns:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                bad("dns", f"'{server}' is not an IP address")
    if not dhcp and address is None:
        bad("dhcp", "dhcp = false needs an address (and usually a gateway)")
    return Interface(
        dhcp,
        str(address) if address is not None else None,
        str(gateway) if gateway is not None else None,
        tuple(str(d) for d in dns),
    )


def check_network(staging: Staging, findings: list[Finding]) -> Network | None:
    """network.toml: ``[ethernet]`` (DHCP by default, or a static address) and optional ``[wifi]``."""
    path = staging.root / NETWORK
    if not path.is_file():
        return None
    shown = staging.display(NETWORK)
    loaded = _load(path, shown, findings)
    if loaded is None:
        return None
    raw, text = loaded
    before = len(findings)
    for key in raw:
        if key not in ("ethernet", "wifi"):
            findings.append(
                Finding(
                    shown,
                    f"unknown section [{key}] (known: [ethernet], [wifi])",
                    table_line(text, key) or key_line(text, "", key),
                )
            )
    eth_raw = raw.get("ethernet", {})
    ethernet = (
        _interface(eth_raw, "ethernet", text, shown, findings) if isinstance(eth_raw, dict) else Interface()
    )
    wifi = None
    wifi_raw = raw.get("wifi")
    if isinstance(wifi_raw, dict) and wifi_raw:
        interface = _interface(wifi_raw, "wifi", text, shown, findings)
        ssid, psk, country = wifi_raw.get("ssid"), wifi_raw.get("psk"), wifi_raw.get("country", "")
        if not isinstance(ssid, str) or not ssid:
            findings.append(
                Finding(shown, "[wifi] ssid: the network name is missing", table_line(text, "wifi"))
            )
        if psk is not None and (not isinstance(psk, str) or not 8 <= len(psk) <= 63):
            findings.append(
                Finding(
                    shown, "[wifi] psk: a WPA password has 8 to 63 characters", key_line(text, "wifi", "psk")
                )
            )
        if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
            findings.append(
                Finding(
                    shown,
                    '[wifi] country: two capital letters, e.g. "NL" (radio rules differ per country)',
                    key_line(text, "wifi", "country") or table_line(text, "wifi"),
                )
            )
        if isinstance(ssid, str):
            wifi = Wifi(
                ssid,
                psk if isinstance(psk, str) else None,
                country if isinstance(country, str) else "",
                interface,
            )
    return Network(ethernet, wifi) if len(findings) == before else None


def check_ssh_keys(staging: Staging, findings: list[Finding]) -> list[str] | None:
    """ssh.pub: OpenSSH public keys, one a line, that may log in as root over SSH."""
    path = staging.root / SSH_KEYS
    if not path.is_file():
        return None
    shown = staging.display(SSH_KEYS)
    keys: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        findings.append(Finding(shown, "cannot be read as text"))
        return None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "PRIVATE KEY" in line:
            findings.append(Finding(shown, "this is a private key: put only the .pub file here", number))
        elif not _SSH_KEY.match(line):
            findings.append(
                Finding(shown, "not an SSH public key (expected e.g. 'ssh-ed25519 AAAA... name')", number)
            )
        else:
            keys.append(line)
    return keys


def check_updates(staging: Staging, findings: list[Finding]) -> hawkbit_config.UpdatesConfig | None:
    """updates.toml: ``[hawkbit]`` server, tenant, controller_id (default: identity.toml's id),
    target_token or gateway_token, ca_file. A token makes the file a secret (taken off the card)."""
    path = staging.root / UPDATES
    if not path.is_file():
        return None
    shown = staging.display(UPDATES)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        findings.append(Finding(shown, f"cannot be read as UTF-8 text: {exc}"))
        return None
    try:
        config = hawkbit_config.parse(
            text,
            path=shown,
            identity_id=hawkbit_config.identity_id(staging.root / IDENTITY),
            base_dir=path.parent,
        )
    except hawkbit_config.ConfigError as exc:
        message = str(exc).removeprefix(f"{shown}: ")
        line = line_from_message(message) or (key_line(text, "hawkbit", exc.field) if exc.field else None)
        findings.append(Finding(shown, message, line))
        return None
    if config is not None and config.ca_file is not None and not config.ca_file.is_file():
        findings.append(
            Finding(
                shown,
                f"[hawkbit] ca_file: {config.ca_file.name} is not in the site folder",
                key_line(text, "hawkbit", "ca_file"),
            )
        )
        return None
    return config
