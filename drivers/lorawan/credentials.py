"""Device keys from the credentials file, kept apart from the main config so the site file
can be shared; a ``Key`` never shows its value in logs, reprs or errors.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

EUI_RE = re.compile(r"^[0-9A-Fa-f]{16}$")
KEY_RE = re.compile(r"^[0-9A-Fa-f]{32}$")
ADDR_RE = re.compile(r"^[0-9A-Fa-f]{8}$")


class CredentialsError(ValueError):
    """A credentials file problem; the message names file and DevEUI, never a key value."""


@dataclass(frozen=True, slots=True)
class Key:
    """A 128-bit AES key that keeps itself out of logs."""

    value: bytes

    def __repr__(self) -> str:
        return "Key(***)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class AbpCredentials:
    dev_addr: int
    nwk_skey: Key
    app_skey: Key


@dataclass(frozen=True, slots=True)
class OtaaCredentials:
    app_eui: str  # JoinEUI in 1.0.4 wording
    app_key: Key


Credentials = AbpCredentials | OtaaCredentials


def normalise_eui(text: str) -> str | None:
    compact = text.replace("-", "").replace(":", "").strip()
    return compact.upper() if EUI_RE.match(compact) else None


def load_credentials(path: Path, dev_eui: str) -> Credentials:
    """The credentials of ``dev_eui`` from ``path`` ([devices.<DevEUI>] tables)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialsError(f"credentials file {path} does not exist") from None
    except OSError as exc:
        raise CredentialsError(f"cannot read credentials file {path}: {exc.strerror}") from None
    except ValueError as exc:  # a NUL in the path, or text that is not UTF-8
        raise CredentialsError(f"cannot read credentials file {str(path)[:100]!r}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, a 5000-digit number, deep nesting
        raise CredentialsError(
            f"credentials file {path} is not valid TOML: {str(exc) or 'nested too deeply'}"
        ) from None
    devices = raw.get("devices")
    if not isinstance(devices, dict):
        raise CredentialsError(f"credentials file {path} has no [devices.<DevEUI>] tables")
    entry = None
    for eui, table in devices.items():
        if normalise_eui(str(eui)) == dev_eui:
            entry = table
            break
    if not isinstance(entry, dict):
        raise CredentialsError(f"credentials file {path} has no [devices.{dev_eui}] table")
    where = f"{path} [devices.{dev_eui}]"
    mode = entry.get("activation", "otaa" if "app_key" in entry else "abp")
    if mode == "abp":
        unknown = set(entry) - {"activation", "dev_addr", "nwk_skey", "app_skey"}
        if unknown:
            raise CredentialsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        dev_addr = entry.get("dev_addr")
        if not isinstance(dev_addr, str) or not ADDR_RE.match(dev_addr):
            raise CredentialsError(f"{where}: dev_addr must be 8 hex digits")
        return AbpCredentials(
            int(dev_addr, 16), _key(entry, "nwk_skey", where), _key(entry, "app_skey", where)
        )
    if mode == "otaa":
        unknown = set(entry) - {"activation", "app_eui", "join_eui", "app_key"}
        if unknown:
            raise CredentialsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        app_eui = normalise_eui(str(entry.get("join_eui", entry.get("app_eui", ""))))
        if app_eui is None:
            raise CredentialsError(f"{where}: app_eui (or join_eui) must be 16 hex digits")
        return OtaaCredentials(app_eui, _key(entry, "app_key", where))
    raise CredentialsError(f"{where}: activation must be 'abp' or 'otaa', got {mode!r}")


def _key(entry: dict[str, object], name: str, where: str) -> Key:
    value = entry.get(name)
    # The message never quotes the value: a near-miss key is still a secret.
    if not isinstance(value, str) or not KEY_RE.match(value):
        raise CredentialsError(f"{where}: {name} must be 32 hex digits")
    return Key(bytes.fromhex(value))
