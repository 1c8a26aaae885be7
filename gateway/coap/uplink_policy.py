"""What the uplink does after each answer: acknowledge, shrink the batch, or wait (and how long).

Sans-IO: response codes and Max-Age in, decisions out; the backoff draws from an injected RNG.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from . import numbers


class Action(enum.Enum):
    """What the uplink does with a batch after the upstream's answer."""

    DELIVERED = "delivered"  # 2.xx: the batch is the upstream's now
    SHRINK = "shrink"  # 4.13: send fewer readings under the same batch number
    RETRY = "retry"  # anything else: the same batch again after a delay


@dataclass(frozen=True, slots=True)
class Decision:
    """The uplink's next step for a batch, and any wait the upstream asked for."""

    action: Action
    #: seconds the upstream asked us to wait (Max-Age on 4.29 / 5.03), else None
    server_delay: float | None = None


def decide(code: int, max_age: int | None) -> Decision:
    """The uplink's reaction to a raw 8-bit CoAP response code."""
    if numbers.code_class(code) == 2:
        return Decision(Action.DELIVERED)
    if code == numbers.raw_code(numbers.CODE_REQUEST_ENTITY_TOO_LARGE):
        return Decision(Action.SHRINK)
    if code in (
        numbers.raw_code(numbers.CODE_TOO_MANY_REQUESTS),
        numbers.raw_code(numbers.CODE_SERVICE_UNAVAILABLE),
    ):
        # Back-pressure: Max-Age says when to come back (RFC 7252 §5.9.3.4, RFC 8516).
        if max_age == 0:
            # "Now" (or a server that only meant "do not cache this"): taken literally, a
            # whole fleet would retry an overloaded upstream in a tight loop. Our own
            # jittered backoff never comes back sooner than Max-Age allows.
            return Decision(Action.RETRY)
        delay = float(max_age) if max_age is not None else float(numbers.DEFAULT_MAX_AGE)
        return Decision(Action.RETRY, server_delay=delay)
    return Decision(Action.RETRY)


class Backoff:
    """Exponential backoff with "equal jitter": each delay is uniform in [d/2, d], d doubling
    from ``minimum`` up to ``maximum``, so many gateways recovering together spread out."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None):
        self.minimum = minimum
        self.maximum = maximum
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.minimum * 2 ** min(self.failures, 60))
        self.failures += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
