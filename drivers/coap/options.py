"""A CoAP device's ``[devices.options]``: where the peer is, how it is secured, what to read.

Parsed once into ``CoapOptions``. Two kinds of peer: ``device`` (a CoAP sensor or actuator
described by a reusable profile) and ``gateway`` (another city gateway: its discovery is read
and the points matching ``observe`` globs are observed, plus any declared in ``points``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gateway.coap.credentials import CredentialEntry, load_credentials
from gateway.driver import PointSpec
from gateway.model import is_valid_name_part
from gateway.options import Table
from gateway.problems import ConfigError

from .freshness import FreshnessPolicy
from .profile import (
    Format,
    PointMap,
    Profile,
    ResourceDef,
    load_profile,
    resolve_profile,
    unknown_profile_message,
)

ONLINE_POINT = "online"
SECURITY = ("none", "oscore", "dtls-psk")


class PeerKind(enum.StrEnum):
    DEVICE = "device"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class CoapOptions:
    uri: str  # scheme://host:port, no path
    peer: PeerKind
    resources: tuple[ResourceDef, ...]  # known before start (profile, or declared points)
    observe_globs: tuple[str, ...]
    security: str
    credentials: CredentialEntry | None = field(repr=False)
    poll_interval: float
    timeout: float
    freshness: FreshnessPolicy
    retry_min: float
    retry_max: float
    rediscover: float
    forward_upstream: bool
    profile_name: str = ""

    def points(self) -> list[PointMap]:
        return [p for r in self.resources for p in r.points]


def gateway_resource(
    name: str, unit: str | None = None, kind: str = "number", writable: bool = False, description: str = ""
) -> ResourceDef:
    """A neighbouring gateway's ``/points/<device>/<point>`` as a one-point SenML resource."""
    return ResourceDef(
        f"points/{name}", Format.SENML, (PointMap(name, unit, kind, writable, None, (), description),), True
    )


def parse(options: Table, config_dir: Path) -> CoapOptions | None:
    uri = options.str("uri")
    peer_text = options.str("peer", PeerKind.DEVICE.value, choices=[k.value for k in PeerKind])
    peer = PeerKind(peer_text)
    security = options.str("security", "none", choices=SECURITY)
    credentials_file = options.str("credentials_file", None)
    credentials_name = options.str("credentials", None)
    poll_interval = options.duration("poll_interval", 10.0, min=0.01)
    timeout = options.duration("timeout", 5.0, min=0.05)
    max_age_cap = options.duration("max_age_cap", 120.0, min=0.1)
    max_age_floor = options.duration("max_age_floor", 1.0, min=0.0)
    grace = options.duration("freshness_grace", 0.5, min=0.0)
    retry_min = options.duration("retry_min", 0.5, min=0.01)
    retry_max = options.duration("retry_max", 30.0, min=0.01)
    rediscover = options.duration("rediscover", 300.0, min=1.0)
    forward = options.bool("forward_upstream", peer is PeerKind.DEVICE)

    resources: list[ResourceDef] = []
    globs: tuple[str, ...] = ()
    profile: Profile | None = None
    if peer is PeerKind.GATEWAY:
        raw_globs = options.list("observe", [])
        if not all(isinstance(g, str) and g for g in raw_globs):
            options.error("observe", 'must be a list of point globs such as "loop-*/occupied"')
        else:
            globs = tuple(raw_globs)
        seen: set[str] = set()
        for table in options.tables("points"):
            resource = _declared_point(table, seen)
            if resource is not None:
                resources.append(resource)
        if options.has("profile"):
            options.seen.add("profile")
            options.error("profile", "a gateway peer is read through its discovery; use observe and points")
        if not globs and not resources:
            options.error("observe", "a gateway peer needs observe globs or [[devices.options.points]]")
    else:
        reference = options.str("profile")
        for key in ("observe", "points"):
            if options.has(key):
                options.seen.add(key)
                options.error(
                    key, 'only applies to peer = "gateway"; a device\'s points come from its profile'
                )
        if reference is not None:
            path = resolve_profile(reference, config_dir)
            if path is None:
                options.error("profile", unknown_profile_message(reference))
            else:
                before = len(options.problems.items)
                profile = load_profile(path, options.problems)
                if profile is None and len(options.problems.items) == before:
                    options.error("profile", f"profile '{reference}' could not be read")
                if profile is not None:
                    resources = list(profile.resources)
    options.finish()

    if uri is not None:
        uri = _check_uri(options, uri, security)
    if retry_max < retry_min:
        options.error("retry_max", f"must be at least retry_min ({retry_min:g}s)")
    if any(p.name == ONLINE_POINT for r in resources for p in r.points):
        options.error("points", f"'{ONLINE_POINT}' is the driver's own point; rename the mapped one")
    entry = _credentials(options, config_dir, security, credentials_file, credentials_name)
    if uri is None:
        return None
    if security != "none" and entry is None:
        return None
    if peer is PeerKind.DEVICE and profile is None:
        return None
    return CoapOptions(
        uri=uri,
        peer=peer,
        resources=tuple(resources),
        observe_globs=globs,
        security=security,
        credentials=entry,
        poll_interval=poll_interval or 10.0,
        timeout=timeout or 5.0,
        freshness=FreshnessPolicy(
            max_age_cap or 120.0,
            max_age_floor if max_age_floor is not None else 1.0,
            grace if grace is not None else 0.5,
        ),
        retry_min=retry_min or 0.5,
        retry_max=retry_max or 30.0,
        rediscover=rediscover or 300.0,
        forward_upstream=bool(forward),
        profile_name=profile.name if profile else "",
    )


def declare(options: CoapOptions | None) -> list[PointSpec]:
    if options is None:
        return []
    specs = [PointSpec(p.name, p.unit, p.kind, p.writable, p.description) for p in options.points()]
    specs.append(PointSpec(ONLINE_POINT, None, "bool", False, "the peer answers and its values are fresh"))
    return specs


def _declared_point(table: Table, seen: set[str]) -> ResourceDef | None:
    name = table.str("name")
    unit = table.str("unit", None)
    kind = table.str("kind", "number", choices=("number", "bool", "string"))
    writable = table.bool("writable", False)
    description = table.str("description", "")
    table.finish()
    if name is None:
        return None
    parts = name.split("/")
    if len(parts) < 2 or not all(is_valid_name_part(p) for p in parts):
        table.error("name", f"'{name}' must be the neighbour's point as device/point, e.g. \"lamp-1/level\"")
        return None
    if name in seen:
        table.error("name", f"point '{name}' is declared twice")
        return None
    seen.add(name)
    return gateway_resource(name, unit, kind or "number", bool(writable), description or "")


def _check_uri(options: Table, uri: str, security: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme not in ("coap", "coaps"):
        options.error("uri", f"'{uri}' must start with coap:// or coaps://")
        return None
    try:
        port = parts.port
    except ValueError:
        options.error("uri", f"'{uri}' has a port that is not a number from 1 to 65535")
        return None
    if not parts.hostname:
        options.error("uri", f"'{uri}' has no host")
        return None
    if parts.path not in ("", "/") or parts.query:
        options.error("uri", f"'{uri}': give only coap://host[:port]; resource paths come from the profile")
        return None
    if parts.scheme == "coaps" and security != "dtls-psk":
        options.error("security", 'a coaps:// URI needs security = "dtls-psk"')
    if parts.scheme == "coap" and security == "dtls-psk":
        options.error("uri", 'security = "dtls-psk" needs a coaps:// URI')
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _credentials(
    options: Table, config_dir: Path, security: str, file_text: str | None, entry_name: str | None
) -> CredentialEntry | None:
    if security not in ("oscore", "dtls-psk"):
        if file_text is not None:
            options.error("credentials_file", 'is only used with security = "oscore" or "dtls-psk"')
        return None
    if file_text is None:
        options.error(
            "credentials_file",
            "is required for this security (a TOML file kept apart "
            "from the site config, see drivers/coap/README.md)",
        )
        return None
    path = Path(file_text)
    if not path.is_absolute():
        path = config_dir / path
    try:
        credentials = load_credentials(path)
    except ConfigError as exc:
        options.problems.items.extend(exc.problems)
        return None
    wanted = entry_name
    if wanted is None:
        options.error("credentials", f'name the entry of {path} to use (e.g. credentials = "cabinet-b")')
        return None
    entry = credentials.entry(wanted)
    if entry is None:
        options.error("credentials", f"{path} has no entry [{wanted}]")
        return None
    if security == "oscore" and entry.oscore is None:
        options.error("credentials", f"{path} entry [{wanted}] has no [{wanted}.oscore] keys")
        return None
    if security == "dtls-psk" and entry.psk is None:
        options.error("credentials", f"{path} entry [{wanted}] has no [{wanted}.psk] key")
        return None
    return entry
