"""The ``[api]`` section: where the CoAP API listens, what is public, who may write.

Parsed once into ``ApiConfig``; API clients are entries of the credentials file, named here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..components import SectionConfig
from ..config import SectionContext
from ..options import Table
from ..problems import ConfigError, Problem, Problems, did_you_mean
from .credentials import CredentialEntry, load_credentials
from .dtls import dtls_unavailable
from .numbers import COAP_PORT

#: resource groups a config can make public (readable without credentials)
RESOURCE_GROUPS = ("discovery", "readings", "points", "health", "overrides", "rules")
#: what an authenticated client may do: read everything, or read and write
ACCESS_LEVELS = ("read", "control")
Access = Literal["read", "control"]


@dataclass(frozen=True, slots=True)
class ApiClient:
    """One client allowed in with the keys of credentials entry ``name``."""

    name: str
    access: Access
    credentials: CredentialEntry = field(repr=False)


@dataclass(frozen=True, slots=True)
class ApiConfig(SectionConfig):
    """The ``[api]`` section: where the CoAP API listens, its limits and the clients let in."""

    #: a ``SectionConfig``: nothing in this section is reported without stopping the start
    nonfatal_problems: ClassVar[tuple[Problem, ...]] = ()

    bind: str = "::"
    port: int = COAP_PORT
    dtls_port: int | None = None
    public: frozenset[str] = frozenset({"discovery"})
    page_size: int = 100
    max_page_size: int = 1000
    observe_queue: int = 64
    credentials_path: Path | None = None
    clients: Mapping[str, ApiClient] = field(default_factory=dict)

    @property
    def oscore_clients(self) -> list[ApiClient]:
        return [c for c in self.clients.values() if c.credentials.oscore is not None]

    @property
    def psk_clients(self) -> list[ApiClient]:
        return [c for c in self.clients.values() if c.credentials.psk is not None]


def parse_api_section(raw: Any, problems: Problems, ctx: SectionContext) -> ApiConfig:
    table = Table(raw, problems, "api")
    defaults = ApiConfig()
    bind = table.str("bind", defaults.bind)
    port = table.int("port", defaults.port, min=1, max=65535)
    dtls_port = table.int("dtls_port", None, min=1, max=65535)
    public = table.list("public", sorted(defaults.public))
    page_size = table.int("page_size", defaults.page_size, min=1)
    max_page_size = table.int("max_page_size", defaults.max_page_size, min=1, max=100_000)
    observe_queue = table.int("observe_queue", defaults.observe_queue, min=1)
    credentials_text = table.str("credentials", None)
    clients_table = table.table("clients")
    table.finish()

    try:
        ipaddress.ip_address(bind)
    except ValueError:
        table.error("bind", f'\'{bind}\' is not an IP address (use e.g. "::", "0.0.0.0" or "127.0.0.1")')
    groups: set[str] = set()
    for index, item in enumerate(public):
        if item not in RESOURCE_GROUPS:
            table.error(
                f"public[{index}]",
                f"'{item}' is not a resource group; choose from "
                f"{', '.join(RESOURCE_GROUPS)}{did_you_mean(str(item), RESOURCE_GROUPS)}",
            )
        else:
            groups.add(item)
    if page_size > max_page_size:
        table.error("page_size", f"must not exceed max_page_size ({max_page_size})")
    if port == dtls_port:
        table.error("dtls_port", "must differ from port")

    access_by_name: dict[str, str] = {}
    for name in list(clients_table.raw):
        value = clients_table.str(name, choices=ACCESS_LEVELS)
        if value is not None:
            access_by_name[name] = value

    credentials_path: Path | None = None
    clients: dict[str, ApiClient] = {}
    if credentials_text is not None and "\0" in credentials_text:
        table.error("credentials", "contains a NUL character; write the path of the keys file")
    elif credentials_text is not None:
        credentials_path = (ctx.config_dir / credentials_text).resolve()
        clients = _load_clients(credentials_path, access_by_name, table)
    elif access_by_name:
        table.error("clients", "set 'credentials' to the file holding these clients' keys")

    if (
        dtls_port is not None
        and credentials_path is not None
        and not any(c.credentials.psk for c in clients.values())
    ):
        table.error("dtls_port", "no client listed in [api.clients] has a [<name>.psk] key")
    if dtls_port is not None:
        problem = dtls_unavailable()
        if problem:
            table.error("dtls_port", problem)
    if any(c.credentials.psk for c in clients.values()) and dtls_port is None:
        table.error("dtls_port", "clients with a DTLS key need dtls_port (e.g. 5684)")

    return ApiConfig(
        bind,
        port,
        dtls_port,
        frozenset(groups),
        page_size,
        max_page_size,
        observe_queue,
        credentials_path,
        clients,
    )


def _load_clients(path: Path, access_by_name: dict[str, str], table: Table) -> dict[str, ApiClient]:
    try:
        credentials = load_credentials(path)
    except ConfigError as exc:
        for problem in exc.problems:
            table.error("credentials", f"in {problem}")
        return {}
    clients: dict[str, ApiClient] = {}
    seen_kids: dict[bytes, str] = {}
    for name, access in access_by_name.items():
        entry = credentials.entry(name)
        if entry is None or (entry.oscore is None and entry.psk is None):
            table.error(f"clients.{name}", f"{path} has no [{name}.oscore] or [{name}.psk] entry")
            continue
        if entry.oscore is not None:
            kid = entry.oscore.recipient_id
            if kid in seen_kids:
                table.error(
                    f"clients.{name}",
                    f"OSCORE recipient_id {kid.hex()} is also used by "
                    f"client '{seen_kids[kid]}'; each client needs its own id",
                )
                continue
            seen_kids[kid] = name
        clients[name] = ApiClient(name, access, entry)  # type: ignore[arg-type]
    return clients
