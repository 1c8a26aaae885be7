"""The health snapshot file: the daemon writes it atomically, ``gateway status`` reads it.

A file in the data directory, not a socket: it needs no API section, no port and no
permissions beyond reading the data directory, and a reader can never slow the daemon down.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

SNAPSHOT_FILE = "health.json"
#: seconds between snapshots; a reader calls one older than ``STALE_FACTOR`` periods dead
SNAPSHOT_INTERVAL = 2.0
STALE_FACTOR = 3
#: how far back the ingest rate looks (hours of buffer left are judged on it)
RATE_WINDOW_S = 600.0


def in_daemon_thread(fn: Callable[[], object]) -> asyncio.Future[None]:
    """Run ``fn`` in a daemon thread and return an awaitable of its end: a write stuck on a
    hung card then holds neither the event loop nor the process's exit."""
    import asyncio

    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def work() -> None:
        error: BaseException | None = None
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            error = exc
        try:
            loop.call_soon_threadsafe(settle, error)
        except RuntimeError:  # the loop has closed meanwhile
            pass

    threading.Thread(target=work, name="health-snapshot", daemon=True).start()
    return done


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a reader found: the health dict and how old it is."""

    health: dict[str, Any]
    age_s: float

    @property
    def stale(self) -> bool:
        interval = float(self.health.get("snapshot", {}).get("interval_s", SNAPSHOT_INTERVAL))
        return self.age_s > STALE_FACTOR * interval


class SnapshotUnreadable(Exception):
    """No snapshot, or not one this version can read; the message says which and why."""


def read_snapshot(data_dir: Path, now: float | None = None) -> Snapshot:
    path = data_dir / SNAPSHOT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SnapshotUnreadable(
            f"no health snapshot at {path}: the daemon is not running (or runs with another data_dir)"
        ) from None
    except OSError as exc:
        raise SnapshotUnreadable(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        health = json.loads(text)
        written = float(health["snapshot"]["written_at"])
    except (ValueError, KeyError, TypeError):
        raise SnapshotUnreadable(f"{path} is not a health snapshot this version can read") from None
    return Snapshot(health, max((time.time() if now is None else now) - written, 0.0))


class IngestRate:
    """Readings committed per second over the last ``RATE_WINDOW_S``, from periodic samples."""

    def __init__(self, window_s: float = RATE_WINDOW_S):
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def sample(self, monotonic: float, committed_readings: int) -> None:
        self._samples.append((monotonic, committed_readings))
        while len(self._samples) > 2 and monotonic - self._samples[1][0] >= self.window_s:
            self._samples.popleft()

    def readings_per_s(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None


def bytes_per_reading(store: dict[str, Any]) -> float | None:
    """Average size of a stored reading: used bytes over the rows the buffer holds (every
    reading ever given a seq, less those evicted or dropped, all counted since creation)."""
    used = store.get("used_bytes")
    removed = sum(
        int(store.get(k, 0) or 0) for k in ("evicted_forwarded", "evicted_age", "dropped_unforwarded")
    )
    rows = int(store.get("last_seq", 0)) - removed
    if used is None or rows <= 0:
        return None
    return float(used) / rows
