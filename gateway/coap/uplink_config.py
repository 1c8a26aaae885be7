"""The ``[[upstreams]]`` section: where, how and how securely readings are pushed north.

Parsed once into ``UpstreamConfig`` objects; credentials are resolved here so that a missing
key or token is a start-up error that names the file and the entry, not a runtime surprise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..components import SectionConfig
from ..config import SectionContext
from ..model import is_valid_name_part
from ..options import Table
from ..problems import ConfigError, Problem, Problems
from .credentials import CredentialEntry, load_credentials
from .dtls import dtls_unavailable
from .uplink_select import PointFilter

FORMATS = ("senml+cbor", "senml+json", "thingsboard", "hono")
SECURITY = ("none", "oscore", "dtls-psk")
METHODS = ("POST", "PUT")
STARTS = ("oldest", "latest")
#: formats whose platform can send commands down
COMMAND_FORMATS = ("thingsboard", "hono")


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """One ``[[upstreams]]`` entry: where readings go, in which format and with what security,
    the batch sizes, retry bounds and which points it receives."""

    name: str
    uri: str
    format: str = "senml+cbor"
    method: str = "POST"
    security: str = "none"
    gateway_id: str = ""
    base_name: str = ""
    batch_size: int = 500
    backlog_batch_size: int = 5000
    linger: float = 1.0
    timeout: float = 60.0
    retry_min: float = 1.0
    retry_max: float = 300.0
    #: lossy, opt-in: float16/float32 approximations of values, times rounded to the ms
    compact_floats: bool = False
    start: str = "oldest"
    #: which points this upstream receives (default: all)
    points: PointFilter = field(default_factory=PointFilter)
    #: accept commands from the platform (ThingsBoard RPC and shared attributes)
    commands: bool = False
    #: ThingsBoard: how often the gateway's own health goes to its own device (0 = never;
    #: default 60 s with per-device tokens, else never)
    health_interval: float = 0.0
    #: Hono: the tenant the gateway and its devices belong to, and how long (s) each
    #: command wait (hono-ttd) lasts
    tenant: str = ""
    command_ttd: int = 60
    credentials: CredentialEntry | None = field(default=None, repr=False)

    @property
    def cursor_name(self) -> str:
        return f"uplink:{self.name}"

    @property
    def request_uri(self) -> str:
        """The URI requests go to (ThingsBoard puts the device token in the path)."""
        if self.format == "thingsboard":
            token = self.credentials.token if self.credentials else ""
            return f"{self.uri.rstrip('/')}/api/v1/{token}/telemetry"
        return self.uri

    @property
    def safe_uri(self) -> str:
        """The request URI with any token hidden, for logs and health."""
        if self.format == "thingsboard":
            return f"{self.uri.rstrip('/')}/api/v1/***/telemetry"
        return self.uri


@dataclass(frozen=True, slots=True)
class UpstreamsConfig(SectionConfig):
    """The ``[[upstreams]]`` section: every upstream the uplink forwards readings to."""

    upstreams: tuple[UpstreamConfig, ...]
    data_dir: Path
    #: a ``SectionConfig``: nothing in this section is reported without stopping the start
    nonfatal_problems: ClassVar[tuple[Problem, ...]] = ()


def parse_upstreams_section(raw: Any, problems: Problems, ctx: SectionContext) -> UpstreamsConfig:
    root = Table({"upstreams": raw}, problems)
    upstreams: list[UpstreamConfig] = []
    seen: set[str] = set()
    for table in root.tables("upstreams"):
        upstream = _parse_one(table, ctx, seen)
        if upstream is not None:
            upstreams.append(upstream)
    return UpstreamsConfig(tuple(upstreams), ctx.site.data_dir)


def _parse_one(table: Table, ctx: SectionContext, seen: set[str]) -> UpstreamConfig | None:
    defaults = UpstreamConfig("", "")
    name = table.str("name")
    uri = table.str("uri")
    fmt = table.str("format", defaults.format, choices=FORMATS)
    method = table.str("method", defaults.method, choices=METHODS)
    security = table.str("security", defaults.security, choices=SECURITY)
    gateway_id = table.str("gateway_id", ctx.site.id)
    base_name = table.str("base_name", None)
    batch_size = table.int(
        "batch_size", 50 if fmt == "thingsboard" else defaults.batch_size, min=1, max=100_000
    )
    backlog = table.int("backlog_batch_size", None, min=1, max=100_000)
    linger = table.duration("linger", defaults.linger, min=0)
    timeout = table.duration("timeout", defaults.timeout, min=1)
    retry_min = table.duration("retry_min", defaults.retry_min, min=0.01)
    retry_max = table.duration("retry_max", defaults.retry_max, min=0.01)
    compact = table.bool("compact_floats", defaults.compact_floats)
    start = table.str("start", defaults.start, choices=STARTS)
    credentials_file = table.str("credentials_file", None)
    credentials_name = table.str("credentials", None)
    include = _globs(table, "include")
    exclude = _globs(table, "exclude")
    commands = table.bool("commands", defaults.commands)
    health_interval = table.duration("health_interval", None, min=0)
    tenant = table.str("tenant", None)
    command_ttd = table.int("command_ttd", defaults.command_ttd, min=1, max=3600)
    table.finish()
    if commands is True and fmt not in COMMAND_FORMATS:
        table.error("commands", f"needs format = {' or '.join(repr(f) for f in COMMAND_FORMATS)}")
    if table.has("health_interval") and fmt != "thingsboard":
        table.error("health_interval", 'is only used with format = "thingsboard"')
    if fmt == "hono" and tenant is None:
        table.error("tenant", 'is required for format = "hono" (the Hono tenant id of the gateway)')
    elif fmt != "hono":
        for key in ("tenant", "command_ttd"):
            if table.has(key):
                table.error(key, 'is only used with format = "hono"')

    if name is not None:
        if not is_valid_name_part(name):
            table.error("name", f"'{name}' may use letters, digits, '_', '-' and '.' only")
        elif name in seen:
            table.error("name", f"upstream '{name}' is defined twice")
        seen.add(name)
    if uri is not None:
        _check_uri(table, uri, security, fmt)
    if retry_max < retry_min:
        table.error("retry_max", f"must be at least retry_min ({retry_min:g}s)")
    if backlog is None:
        backlog = max(batch_size, min(batch_size * 10, 5000))
    if backlog < batch_size:
        table.error("backlog_batch_size", f"must be at least batch_size ({batch_size})")

    entry = _credentials(table, ctx, name, security, fmt, credentials_file, credentials_name)
    if name is None or uri is None:
        return None
    return UpstreamConfig(
        name=name,
        uri=uri,
        format=fmt,
        method=method,
        security=security,
        gateway_id=gateway_id,
        base_name=base_name if base_name is not None else f"{gateway_id}/",
        batch_size=batch_size,
        backlog_batch_size=backlog,
        linger=linger,
        timeout=timeout,
        retry_min=retry_min,
        retry_max=retry_max,
        compact_floats=compact,
        start=start,
        points=PointFilter(include, exclude),
        commands=commands is True,
        health_interval=(
            float(health_interval)
            if health_interval is not None
            else 60.0
            if entry is not None and entry.device_tokens
            else 0.0
        ),
        tenant=tenant if tenant is not None else "",
        command_ttd=command_ttd,
        credentials=entry,
    )


def _globs(table: Table, key: str) -> tuple[str, ...]:
    """``include`` / ``exclude``: a list of point-name globs such as ``"energy-*/*"``."""
    raw = table.list(key, None)
    if raw is None:
        return ()
    out: list[str] = []
    for index, item in enumerate(raw):
        if not isinstance(item, str) or not item.strip():
            table.error(
                key, f'item {index + 1} must be a point name or glob such as "lamp-*/level", got {item!r}'
            )
        elif "/" not in item and "*" not in item:
            table.error(key, f"'{item}' names no point: use device/point or a glob such as '{item}/*'")
        else:
            out.append(item)
    if key == "include" and not raw:
        table.error(key, "is empty, so this upstream would receive nothing: leave it out to send every point")
    return tuple(out)


def _check_uri(table: Table, uri: str, security: str, fmt: str) -> None:
    parts = urlsplit(uri)
    if parts.scheme not in ("coap", "coaps"):
        table.error("uri", f"'{uri}' must start with coap:// or coaps://")
        return
    if not parts.hostname:
        table.error("uri", f"'{uri}' has no host")
    if parts.scheme == "coaps" and security != "dtls-psk":
        table.error("security", 'a coaps:// URI needs security = "dtls-psk"')
    if parts.scheme == "coap" and security == "dtls-psk":
        table.error("uri", 'security = "dtls-psk" needs a coaps:// URI')
    if security == "dtls-psk" and (missing := dtls_unavailable()) is not None:
        # without it aiocoap's client would only time out, batch after batch
        table.error("security", missing)
    if fmt == "thingsboard" and parts.path not in ("", "/"):
        table.error(
            "uri",
            'for format = "thingsboard" give only coap://host[:port]; '
            "the gateway adds /api/v1/<token>/telemetry",
        )
    if fmt == "hono" and parts.path not in ("", "/"):
        table.error(
            "uri",
            'for format = "hono" give only coaps://host[:port] of the CoAP adapter; '
            "the gateway adds /telemetry/<tenant>/<device>",
        )


def _credentials(
    table: Table,
    ctx: SectionContext,
    name: str | None,
    security: str,
    fmt: str,
    file_text: str | None,
    entry_name: str | None,
) -> CredentialEntry | None:
    needs = security in ("oscore", "dtls-psk") or fmt == "thingsboard"
    if not needs:
        if file_text is not None:
            table.error(
                "credentials_file",
                'is only used with security = "oscore" or "dtls-psk" or format = "thingsboard"',
            )
        return None
    if file_text is None:
        table.error(
            "credentials_file",
            "is required for this upstream's security or format "
            "(a TOML file kept apart from this config, see gateway/coap/README.md)",
        )
        return None
    path = Path(file_text)
    if not path.is_absolute():
        path = ctx.config_dir / path
    try:
        credentials = load_credentials(path)
    except ConfigError as exc:
        for problem in exc.problems:
            table.problems.items.append(problem)
        return None
    wanted = entry_name if entry_name is not None else name
    if wanted is None:
        return None
    entry = credentials.entry(wanted)
    if entry is None:
        table.error("credentials", f"{path} has no entry [{wanted}]")
        return None
    if security == "oscore" and entry.oscore is None:
        table.error("credentials", f"{path} entry [{wanted}] has no [{wanted}.oscore] keys")
    if security == "dtls-psk" and entry.psk is None:
        table.error("credentials", f"{path} entry [{wanted}] has no [{wanted}.psk] key")
    if fmt == "thingsboard" and not entry.token:
        table.error("credentials", f"{path} entry [{wanted}] has no token")
    return entry
