"""How long an observed or polled value stays fresh, from the Max-Age its answer carried,
and the retry schedule while a peer is silent. Pure arithmetic over seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.coap.numbers import DEFAULT_MAX_AGE


@dataclass(frozen=True, slots=True)
class FreshnessPolicy:
    """``cap``: the most a Max-Age may count (a peer may say 1 day; a rule cannot wait that
    long to learn it is gone). ``floor``: the least (Max-Age 0 means "no caching", not "dead
    at once"). ``grace``: slack for transit and the peer's own scheduling."""

    cap: float = 2.0 * DEFAULT_MAX_AGE
    floor: float = 1.0
    grace: float = 0.5

    def bound(self, max_age: int | None) -> float:
        """Seconds after an answer by which the next one must arrive."""
        age = float(DEFAULT_MAX_AGE if max_age is None else max_age)
        return min(max(age, self.floor), self.cap) + self.grace

    def deadline(self, received_at: float, max_age: int | None) -> float:
        return received_at + self.bound(max_age)


def retry_delay(failures: int, minimum: float, maximum: float) -> float:
    """Backoff after ``failures`` consecutive failures (1, 2, ...): doubling from ``minimum``."""
    if failures <= 0:
        return 0.0
    return min(minimum * (2.0 ** min(failures - 1, 30)), maximum)
