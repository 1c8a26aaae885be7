"""What the engine remembers about each rule, and the part of it that survives a restart
(``for`` timers, hysteresis sides, schedules, fail-safe and error state), kept in the store
by the rules component.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RuleState:
    """What the engine remembers about one rule; the durable part goes to the store."""

    fingerprint: str = ""
    hold_since: float | None = None
    hold_until: float | None = None
    latched: bool = False
    step: int | None = None
    resume_at: float | None = None
    queued: int = 0
    cooldown_until: float = 0.0
    last_fired: float | None = None
    fired: int = 0
    failsafe: str | None = None  # None | "stale" | "error"
    error: str | None = None
    memory: dict[str, Any] = field(default_factory=dict)  # trigger index -> last seen
    next_at: dict[int, float] = field(default_factory=dict)  # schedule trigger index -> due
    # not persisted
    skipped: int = 0

    DURABLE = (
        "fingerprint",
        "hold_since",
        "hold_until",
        "latched",
        "step",
        "resume_at",
        "queued",
        "cooldown_until",
        "last_fired",
        "fired",
        "failsafe",
        "error",
        "memory",
        "next_at",
    )

    def export(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: data[k] for k in self.DURABLE}

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> RuleState:
        state = cls()
        for key in cls.DURABLE:
            if key in data:
                setattr(state, key, data[key])
        state.memory = dict(state.memory or {})
        state.next_at = {int(k): float(v) for k, v in (state.next_at or {}).items()}
        return state
