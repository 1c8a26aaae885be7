"""The trigger kinds, one module each; a new kind is a new module and one line here."""

from __future__ import annotations

from . import cron, every, point, stale, sun, when
from .base import NOT_FIRED, Compile, Evaluate, Fired, Parse, Silence, Trigger
from .point import PointChanges, PointCrosses

#: a ``[[rule.trigger]]`` table's kind key -> its parser, in the order problems list them
PARSERS: dict[str, Parse] = {module.KEY: module.parse for module in (point, when, cron, sun, every, stale)}

__all__ = [
    "NOT_FIRED",
    "PARSERS",
    "Compile",
    "Evaluate",
    "Fired",
    "Parse",
    "PointChanges",
    "PointCrosses",
    "Silence",
    "Trigger",
]
