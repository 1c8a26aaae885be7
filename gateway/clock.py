"""Time for the whole gateway: wall clock, monotonic clock, sleeping, and clock-sync status.

Tests and `rules test` swap in a ``ManualClock`` so timing logic runs without real sleeps.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

# adjtimex(2) returns TIME_ERROR while the kernel considers the clock unsynchronised.
_TIME_ERROR = 5
_TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")


class Clock(Protocol):
    """The gateway's time: wall clock for reading timestamps, monotonic for intervals, and
    whether the wall clock is synchronised. Tests use a manual clock in its place."""

    def time(self) -> float: ...
    def monotonic(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...
    def synced(self) -> bool: ...


def kernel_clock_synced() -> bool:
    """True when NTP (timesyncd, chrony, ntpd) has synchronised the system clock."""
    if _TIMESYNCD_FLAG.exists():
        return True
    try:
        state = _adjtimex()
    except (OSError, AttributeError):
        return True
    return bool(state != _TIME_ERROR and state >= 0)


@functools.cache
def _adjtimex_call() -> Callable[[], int]:
    """adjtimex(2) through ctypes, from the C library the interpreter already has loaded (no
    ctypes.util: its find_library runs ldconfig in a subprocess and imports about 1 MB).
    ctypes (about 0.4 MB) is imported only here: where timesyncd says the clock is
    synchronised, which is sticky, the gateway never needs it."""
    import ctypes

    class Timex(ctypes.Structure):
        # struct timex from <sys/timex.h>; only the size and the return value matter to us.
        _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 204)]

    libc = ctypes.CDLL(None, use_errno=True)
    return lambda: int(libc.adjtimex(ctypes.byref(Timex())))


def _adjtimex() -> int:
    return _adjtimex_call()()


class SystemClock:
    """The real clock. Sync status is re-checked at most once a minute: it is a syscall."""

    def __init__(self, assume_synced: bool | None = None):
        self._forced = assume_synced
        self._synced = False
        self._checked_at = -1e9

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def synced(self) -> bool:
        if self._forced is not None:
            return self._forced
        now = time.monotonic()
        if not self._synced and now - self._checked_at > 60:
            self._checked_at = now
            self._synced = kernel_clock_synced()
        return self._synced


class ManualClock:
    """A clock that only moves when told to; sleepers wake in deadline order."""

    def __init__(self, start: float = 1_767_225_600.0):  # 2026-01-01T00:00:00Z
        self._now = start
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def synced(self) -> bool:
        return True

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + max(0.0, seconds), next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its deadline and letting it run."""
        target = self._mono + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now += deadline - self._mono
            self._mono = deadline
            if not future.done():
                future.set_result(None)
            await self.settle()
        self._now += target - self._mono
        self._mono = target
        await self.settle()

    async def settle(self, max_rounds: int = 100_000) -> None:
        """Return once the event loop is quiet: every task that can run has run until its next
        wait (on this clock, a queue, I/O or a thread). Work a thread finishes later is not
        seen; wait for its effect."""
        loop = asyncio.get_running_loop()
        quiet_rounds = 0
        for _ in range(max_rounds):
            await asyncio.sleep(0)
            # CPython's queue of callbacks still to run (this task's own wake-up is not in it
            # yet): empty when every other task is waiting
            ready = len(getattr(loop, "_ready", ()))
            quiet_rounds = quiet_rounds + 1 if ready == 0 else 0
            if quiet_rounds >= 2:
                return
        raise RuntimeError(f"the event loop did not go quiet within {max_rounds} rounds")
