"""A neighbouring gateway's ``/.well-known/core`` (RFC 6690 link format) and the choice of
its points by glob. Pure code over text: the driver fetches, this module reads.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.coap.linkformat import Link

#: where a gateway serves its points and what resource type it gives them (gateway/coap/api.py)
POINTS_PREFIX = "/points/"
POINT_RT = "gateway.point"
ACTUATOR_IF = "core.a"


@dataclass(frozen=True, slots=True)
class RemotePoint:
    """A point a neighbouring gateway offers: its name there, whether it takes writes."""

    name: str
    writable: bool
    observable: bool


def gateway_points(links: Iterable[Link]) -> list[RemotePoint]:
    """The points a gateway's discovery lists (``/points/...`` with rt=gateway.point)."""
    out = []
    for link in links:
        if not link.target.startswith(POINTS_PREFIX):
            continue
        rts = link.values("rt")
        if rts and POINT_RT not in rts:
            continue
        name = link.target[len(POINTS_PREFIX) :]
        if not name or "/" not in name:
            continue
        out.append(RemotePoint(name, ACTUATOR_IF in link.values("if"), link.has("obs")))
    return out


def select(points: Sequence[RemotePoint], globs: Sequence[str]) -> list[RemotePoint]:
    """Points whose name matches any glob (``loop-*/occupied``, ``lamp-?/*``), in order."""
    return [p for p in points if any(fnmatch.fnmatchcase(p.name, g) for g in globs)]


def unmatched(points: Sequence[RemotePoint], globs: Sequence[str]) -> list[str]:
    """Globs that match nothing the neighbour offers (worth a warning: a typo, or a missing point)."""
    return [g for g in globs if not any(fnmatch.fnmatchcase(p.name, g) for p in points)]
