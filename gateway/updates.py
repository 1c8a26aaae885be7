"""The last A/B update's outcome, as the card image's commit service leaves it in the data dir.

``<data_dir>/update.json`` (written by ``gateway-commit``, root, atomically): committed, or
rolled back with the check that failed and why. The daemon shows it in its health and sends
each new outcome upstream once, as an ``events/update`` reading. Off the image the file never
exists and nothing here does anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from .model import Reading

log = logging.getLogger("gateway.updates")

UPDATE_FILE = "update.json"
EVENT_POINT = "events/update"
STATE_NAMESPACE = "updates"
#: how often the file is looked at: the commit happens minutes after the daemon started
POLL_S = 10.0


class UpdateRecord:
    """The file's content, re-read only when its modification time changes."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / UPDATE_FILE
        self.record: dict[str, Any] | None = None
        self._mtime_ns: int | None = None

    def poll(self) -> bool:
        """Re-read the file if it changed; True when the record is new."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return False
        if mtime == self._mtime_ns:
            return False
        self._mtime_ns = mtime
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("event=update_record_unreadable path=%s error=%r", self.path, str(exc))
            return False
        if not isinstance(value, dict):
            return False
        self.record = value
        return True


async def report_updates(
    record: UpdateRecord,
    *,
    publish: Callable[[Sequence[Reading]], bool],
    get_reported: Callable[[], Awaitable[Any]],
    set_reported: Callable[[str], Awaitable[None]],
    now: Callable[[], float],
    synced: Callable[[], bool],
    poll_s: float = POLL_S,
) -> None:
    """Forever: each outcome with an id not yet reported becomes one ``events/update`` reading
    (stored, so it reaches the upstream whenever the uplink works)."""
    while True:
        if record.poll() and record.record is not None:
            ident = record.record.get("id")
            if ident and ident != await get_reported():
                body = json.dumps(record.record, sort_keys=True, separators=(",", ":"))
                if publish([Reading(EVENT_POINT, body, now(), clock_synced=synced())]):
                    await set_reported(str(ident))
                    log.info("event=update_reported id=%s result=%s", ident, record.record.get("result"))
        await asyncio.sleep(poll_s)
