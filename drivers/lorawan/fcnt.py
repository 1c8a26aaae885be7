"""Frame-counter rules: the 32-bit uplink counter rebuilt from the 16 bits on air, with
replays and stale frames refused, and the loudly-marked relaxed mode for ABP devices that reset.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import FCNT_16_MODULO, FCNT_32_MODULO, FCNT_MAX_GAP


@dataclass(frozen=True, slots=True)
class Candidate:
    """The 32-bit counter a 16-bit FCnt most plausibly stands for, or why none is acceptable.

    ``reason`` is None for a frame that moves the counter forward, "replay" for a repeat of the
    last counter, "stale" for an older one (or a jump too large to be believed).
    """

    fcnt32: int
    reason: str | None


def candidate(last: int | None, fcnt16: int) -> Candidate:
    """Rebuild the full counter from the last accepted one (None: nothing accepted yet)."""
    if last is None:
        return Candidate(fcnt16, None)
    gap = (fcnt16 - last) % FCNT_16_MODULO
    if gap == 0:
        return Candidate(last, "replay")
    if gap >= FCNT_MAX_GAP:
        # Going backwards in the low 16 bits, or skipping more frames than a device plausibly
        # lost: both are what a replayed old frame looks like, so refuse rather than guess.
        return Candidate((last - (FCNT_16_MODULO - gap)) % FCNT_32_MODULO, "stale")
    return Candidate((last + gap) % FCNT_32_MODULO, None)


def next_downlink(last_down: int | None) -> int:
    return 0 if last_down is None else (last_down + 1) % FCNT_32_MODULO
