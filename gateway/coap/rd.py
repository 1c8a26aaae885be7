"""CoRE Resource Directory registration (RFC 9176) as pure functions: finding the
registration interface, the registration query, the link set, what each answer means.

No sockets; ``rd_component`` does the I/O. RFC 9176 §4.3 (registration: ``POST`` to the
interface with ``ep``, ``lt``, optional ``d`` and ``base``, link-format payload, 2.01 and a
Location-Path), §5.3.1 (refresh: ``POST`` to that location; 4.04 = the directory forgot it,
register again), §5.3.3 (removal: ``DELETE``).
"""

from __future__ import annotations

import enum

from . import numbers
from .linkformat import parse_link_format

CONTENT_FORMAT_LINK_FORMAT = 40
#: RFC 9176 §4.1: how a client finds the registration interface
DISCOVERY_QUERY = "rt=core.rd"
REGISTRATION_RT = "core.rd"
#: refresh when this share of the lifetime has gone (leaves time for retries)
REFRESH_SHARE = 0.75


def registration_interface(wkc: str) -> str | None:
    """The path of the directory's registration interface from its ``/.well-known/core``."""
    for link in parse_link_format(wkc.encode()):
        if REGISTRATION_RT in link.values("rt"):
            return link.target
    return None


def link_set(site_links: str) -> str:
    """What the gateway registers: its resources without ``/.well-known/core`` itself."""
    kept = [link for link in _split_links(site_links) if not link.startswith("</.well-known/core>")]
    return ",".join(kept)


def _split_links(text: str) -> list[str]:
    """Top-level comma split (commas inside quotes or <> stay)."""
    out, depth_quote, depth_angle, start = [], False, False, 0
    for i, ch in enumerate(text):
        if ch == '"' and not depth_angle:
            depth_quote = not depth_quote
        elif ch == "<" and not depth_quote:
            depth_angle = True
        elif ch == ">" and not depth_quote:
            depth_angle = False
        elif ch == "," and not depth_quote and not depth_angle:
            out.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [link for link in out if link]


def registration_query(
    endpoint: str, lifetime: int, sector: str | None = None, base: str | None = None
) -> list[str]:
    query = [f"ep={endpoint}", f"lt={lifetime}"]
    if sector:
        query.append(f"d={sector}")
    if base:
        query.append(f"base={base}")
    return query


def refresh_delay(lifetime: int) -> float:
    return max(lifetime * REFRESH_SHARE, 1.0)


class Outcome(enum.Enum):
    """What a registration or refresh at the resource directory came to."""

    REGISTERED = "registered"  # 2.01 (or 2.04 to a refresh)
    LOST = "lost"  # 4.04 to a refresh: the directory no longer knows it
    RETRY = "retry"  # anything else: try again after a delay


def outcome(code: int, refreshing: bool) -> Outcome:
    if numbers.code_class(code) == 2:
        return Outcome.REGISTERED
    if refreshing and code == numbers.raw_code(numbers.CODE_NOT_FOUND):
        return Outcome.LOST
    return Outcome.RETRY
