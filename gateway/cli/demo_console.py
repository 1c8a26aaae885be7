"""What the demo console shows: readings of the points asked for (``--points GLOB``), and the
log events a person trying rules wants to see even at the default log level."""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterable

from ..model import Reading
from .pointsel import PointSelection
from .timefmt import show_value

#: printed at any log level in the demo: rule files loaded, removed or rejected, and overrides
#: set, started, ended or cleared
OPERATOR_EVENTS = (
    "event=rules_loaded",
    "event=rules_removed",
    "event=rules_rejected",
    "event=rules_accepted_copy",
    "event=rules_skipped_unguarded",
    "event=override_",
)


class OperatorEvents(logging.Filter):
    """Passes records at the chosen level, and operator events whatever their level."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or (
            isinstance(record.msg, str) and record.msg.startswith(OPERATOR_EVENTS)
        )


def show_operator_events() -> None:
    """Call after ``setup_logging``: lets the operator events through a quieter level."""
    root = logging.getLogger()
    if root.level <= logging.INFO:
        return
    for handler in root.handlers:
        handler.addFilter(OperatorEvents(root.level))
    root.setLevel(logging.INFO)


class ReadingConsole:
    """One line a reading, for the points selected, with times in the site's zone."""

    def __init__(self, timezone: str, patterns: tuple[str, ...] = ()):
        self.zone = zoneinfo.ZoneInfo(timezone)
        self.selection = PointSelection(patterns)

    def lines(self, batch: Iterable[Reading]) -> list[str]:
        return [self.format(r) for r in batch if self.selection.matches(r.point)]

    def format(self, r: Reading) -> str:
        when = dt.datetime.fromtimestamp(r.ts, self.zone).strftime("%H:%M:%S")
        unit = f" {r.unit}" if r.unit else ""
        return f"{when}  {r.point:<28} {show_value(r.value)}{unit}"
