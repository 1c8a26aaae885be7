"""The ``[directory]`` section: which CoRE Resource Directory the gateway registers with.

Parsed once into ``DirectoryConfig``; the endpoint name defaults to the gateway id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..components import SectionConfig
from ..config import SectionContext
from ..model import is_valid_name_part
from ..options import Table
from ..problems import Problem, Problems


@dataclass(frozen=True, slots=True)
class DirectoryConfig(SectionConfig):
    """The ``[directory]`` section: the resource directory the gateway registers with."""

    #: a ``SectionConfig``: nothing in this section is reported without stopping the start
    nonfatal_problems: ClassVar[tuple[Problem, ...]] = ()

    uri: str
    endpoint: str
    sector: str | None = None
    #: seconds the registration lives unless refreshed (RFC 9176 ``lt``)
    lifetime: int = 3600
    #: the registration interface's path; None = ask the directory (``rt=core.rd``)
    registration_path: str | None = None
    #: the base URI to register; None = the directory takes the API's source address
    base: str | None = None
    timeout: float = 30.0
    retry_min: float = 2.0
    retry_max: float = 300.0


def parse_directory_section(raw: Any, problems: Problems, ctx: SectionContext) -> DirectoryConfig | None:
    table = Table(raw, problems, "directory")
    uri = table.str("uri")
    endpoint = table.str("endpoint", ctx.site.id)
    sector = table.str("sector", None)
    lifetime = table.duration("lifetime", 3600.0, min=2)
    registration_path = table.str("registration_path", None)
    base = table.str("base", None)
    timeout = table.duration("timeout", 30.0, min=1)
    retry_min = table.duration("retry_min", 2.0, min=0.01)
    retry_max = table.duration("retry_max", 300.0, min=0.01)
    table.finish()
    if uri is not None:
        parts = urlsplit(uri)
        if parts.scheme != "coap" or not parts.hostname:
            table.error("uri", f"'{uri}' must be coap://host[:port] of the resource directory")
        elif parts.path not in ("", "/"):
            table.error(
                "uri",
                "give only coap://host[:port]; set registration_path for a fixed "
                "registration interface (else the directory is asked for it)",
            )
    if not is_valid_name_part(endpoint):
        table.error("endpoint", f"'{endpoint}' may use letters, digits, '_', '-' and '.' only")
    if registration_path is not None and not registration_path.startswith("/"):
        table.error("registration_path", "must start with '/' (e.g. \"/rd\")")
    if lifetime > 4294967295:
        table.error("lifetime", "must be at most 4294967295 seconds (RFC 9176)")
    if uri is None:
        return None
    return DirectoryConfig(
        uri=uri.rstrip("/"),
        endpoint=endpoint,
        sector=sector,
        lifetime=int(lifetime),
        registration_path=registration_path,
        base=base,
        timeout=float(timeout),
        retry_min=float(retry_min),
        retry_max=float(retry_max),
    )
