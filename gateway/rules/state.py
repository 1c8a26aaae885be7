"""What the engine remembers about each rule, the part that survives a restart (``for`` timers,
latches, schedules, fail-safe and error) and which rules changed since the store last saved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .model import Rule


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


class RuleStates:
    """Owns the state of every loaded rule and what the store still has to learn: rules whose
    durable state changed since the last ``take_dirty`` and rules that went away."""

    def __init__(self) -> None:
        self.by_name: dict[str, RuleState] = {}
        self._dirty: set[str] = set()
        self._removed: set[str] = set()

    def __getitem__(self, name: str) -> RuleState:
        return self.by_name[name]

    def touch(self, name: str) -> None:
        """The durable state of rule ``name`` changed: save it at the next ``take_dirty``."""
        self._dirty.add(name)

    def install(
        self,
        fingerprints: Mapping[str, str],
        saved: Mapping[str, Mapping[str, Any]],
        *,
        catch_up_since: float,
    ) -> None:
        """Keep the state of every rule whose fingerprint is unchanged; a new or edited rule
        starts from ``saved`` when its fingerprint matches there, else fresh. A saved schedule
        time before ``catch_up_since`` is dropped, so only a recent miss fires at start."""
        for name in set(self.by_name) - set(fingerprints):
            del self.by_name[name]
            self._removed.add(name)
        for name, fingerprint in fingerprints.items():
            state = self.by_name.get(name)
            if state is not None and state.fingerprint == fingerprint:
                continue
            data = saved.get(name)
            if data and data.get("fingerprint") == fingerprint:
                state = RuleState.restore(data)
                # a sunset missed during a power cut still switches the lamps on at start
                state.next_at = {i: t for i, t in state.next_at.items() if t >= catch_up_since}
            else:
                state = RuleState(fingerprint=fingerprint)
                self._dirty.add(name)
            self.by_name[name] = state

    def take_dirty(self) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Durable state of rules changed since the last call, and names of removed rules."""
        changed = {name: self.by_name[name].export() for name in self._dirty if name in self.by_name}
        removed = set(self._removed)
        self._dirty.clear()
        self._removed.clear()
        return changed, removed


def status(rule: Rule, state: RuleState) -> dict[str, Any]:
    """What health and ``gateway rules`` show of one rule."""
    return {
        "file": rule.file,
        "fired": state.fired,
        "last_fired": _iso(state.last_fired),
        "holding_until": _iso(state.hold_until),
        "running": state.step is not None,
        "failsafe": state.failsafe,
        "error": state.error,
        "skipped_triggers": state.skipped,
    }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
