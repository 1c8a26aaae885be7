"""The per-device circuit breaker: after a failure, leave the device alone for a while.

Sans-IO (times are passed in), so the backoff schedule is tested without sleeping. An open
breaker lets one probe through when its period ends; each failed probe doubles the period.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CircuitBreaker:
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    #: consecutive failures before the breaker opens; 1 means the first timeout opens it
    threshold: int = 1
    failures: int = 0
    backoff: float = 0.0
    retry_at: float = 0.0
    trips: int = 0

    @property
    def is_open(self) -> bool:
        return self.failures >= self.threshold

    def allows(self, now: float) -> bool:
        """May a request go to the device at ``now``? True for a closed breaker or a due probe."""
        return not self.is_open or now >= self.retry_at

    def retry_in(self, now: float) -> float:
        return max(0.0, self.retry_at - now) if self.is_open else 0.0

    def success(self) -> bool:
        """Record an answer; True when this closes an open breaker (the device is back)."""
        was_open = self.is_open
        self.failures = 0
        self.backoff = 0.0
        self.retry_at = 0.0
        return was_open

    def failure(self, now: float) -> bool:
        """Record a failed request; True when this opens the breaker (the device just went away)."""
        was_open = self.is_open
        self.failures += 1
        if not self.is_open:
            return False
        self.backoff = self.backoff_min if not was_open else min(self.backoff * 2, self.backoff_max)
        self.retry_at = now + self.backoff
        if not was_open:
            self.trips += 1
        return not was_open
