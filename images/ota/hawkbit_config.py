"""updates.toml: which hawkBit-compatible server this box asks for updates, and as whom.

Parsed once into a frozen ``UpdatesConfig``; every mistake is a ``ConfigError`` naming the file
and the field. Shared by the commissioning import (checks the card's copy) and gateway-hawkbit.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FILE_NAME = "updates.toml"
KEYS = ("server", "tenant", "controller_id", "target_token", "gateway_token", "ca_file", "compatible")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class ConfigError(ValueError):
    def __init__(self, path: str, field: str, message: str):
        super().__init__(f"{path}: [hawkbit] {field}: {message}" if field else f"{path}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class UpdatesConfig:
    server: str  # https://updates.city.example (no trailing slash)
    tenant: str
    controller_id: str
    authorization: str | None  # the Authorization header value
    ca_file: Path | None
    compatible: str

    @property
    def controller_base(self) -> str:
        return f"{self.server}/{self.tenant}/controller/v1/{self.controller_id}"

    @property
    def has_secret(self) -> bool:
        return self.authorization is not None


def parse(
    text: str,
    *,
    path: str,
    identity_id: str | None,
    base_dir: Path | None = None,
    compatible: str = "city-gateway-rpi",
) -> UpdatesConfig | None:
    """None when the file has no [hawkbit] table (updates from a server are off)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"malformed TOML: {exc}") from None
    unknown = [k for k in raw if k != "hawkbit"]
    if unknown:
        raise ConfigError(path, "", f"unknown table or key '{unknown[0]}' (known: [hawkbit])")
    table = raw.get("hawkbit")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(path, "", "hawkbit must be a table: [hawkbit]")
    return _parse_table(table, path, identity_id, base_dir, compatible)


def _parse_table(
    table: dict[str, Any], path: str, identity_id: str | None, base_dir: Path | None, compatible: str
) -> UpdatesConfig:
    for key in table:
        if key not in KEYS:
            raise ConfigError(path, key, f"unknown key (known: {', '.join(KEYS)})")
    server = table.get("server")
    if not isinstance(server, str):
        raise ConfigError(
            path, "server", 'required: the server\'s URL, e.g. server = "https://updates.city.example"'
        )
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(path, "server", f"must be an http:// or https:// URL without query, got {server!r}")
    tenant = table.get("tenant", "DEFAULT")
    if not isinstance(tenant, str) or not _ID.match(tenant):
        raise ConfigError(path, "tenant", f"must be letters, digits, '.', '_', ':' or '-', got {tenant!r}")
    controller_id = table.get("controller_id", identity_id)
    if controller_id is None:
        raise ConfigError(path, "controller_id", "not set and identity.toml has no id to default to")
    if not isinstance(controller_id, str) or not _ID.match(controller_id):
        raise ConfigError(
            path,
            "controller_id",
            f"must be letters, digits, '.', '_', ':' or '-' (at most 64), got {controller_id!r}",
        )
    authorization = None
    tokens = [k for k in ("target_token", "gateway_token") if k in table]
    if len(tokens) > 1:
        raise ConfigError(path, tokens[1], "give either target_token or gateway_token, not both")
    if tokens:
        token = table[tokens[0]]
        if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token):
            raise ConfigError(path, tokens[0], "must be the token text, without spaces")
        scheme = "TargetToken" if tokens[0] == "target_token" else "GatewayToken"
        authorization = f"{scheme} {token}"
    ca_file = None
    if "ca_file" in table:
        ca = table["ca_file"]
        if not isinstance(ca, str) or not ca:
            raise ConfigError(path, "ca_file", f"must be a file name, got {ca!r}")
        if parts.scheme != "https":
            raise ConfigError(path, "ca_file", "only means something for an https:// server")
        ca_file = Path(ca) if base_dir is None else base_dir / ca
    if "compatible" in table:
        compatible = table["compatible"]
        if not isinstance(compatible, str) or not compatible:
            raise ConfigError(path, "compatible", f"must be a text, got {compatible!r}")
    return UpdatesConfig(
        server=server.rstrip("/"),
        tenant=tenant,
        controller_id=controller_id,
        authorization=authorization,
        ca_file=ca_file,
        compatible=compatible,
    )


def identity_id(identity_toml: Path) -> str | None:
    """``id`` of identity.toml, or None when it is absent or unreadable (commissioning reports that)."""
    try:
        value = tomllib.loads(identity_toml.read_text(encoding="utf-8")).get("id")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return value if isinstance(value, str) else None


def load(path: Path, identity_toml: Path) -> UpdatesConfig | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc}") from None
    config = parse(text, path=str(path), identity_id=identity_id(identity_toml), base_dir=path.parent)
    if config is not None and config.ca_file is not None and not config.ca_file.is_file():
        raise ConfigError(str(path), "ca_file", f"{config.ca_file} does not exist")
    return config
