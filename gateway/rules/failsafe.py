"""Fail-safe: how long a rule's inputs may stay silent, which points a rule guards, the values
written when it cannot be trusted, and points held at fail-safe while a broken file would drive
them. Sans-IO: it returns the commands; the engine sends them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..actuators import ActuatorSettings
from .inputs import Inputs
from .model import FailSafeCommand, Rule
from .state import RuleState

DEFAULT_STALE_AFTER = 300.0


class FailSafe:
    """Owns the site's ``[actuators]`` fail-safe settings and the points held at fail-safe
    (point -> the broken rule file that would drive it)."""

    def __init__(self, actuators: Mapping[str, ActuatorSettings], default_stale_after: float):
        self.actuators = dict(actuators)
        self.default_stale_after = default_stale_after
        #: point -> rule file: held at its fail-safe value because the file that would drive it
        #: is broken and has no version running; rules writing the point step back meanwhile
        self.held: dict[str, str] = {}

    def _fail_safe(self, point: str) -> ActuatorSettings | None:
        settings = self.actuators.get(point)
        return settings if settings is not None and settings.fail_safe is not None else None

    def guards(self, rule: Rule) -> bool:
        """True when ``rule`` writes a point that has a fail-safe value."""
        return any(self._fail_safe(p) is not None for p in rule.writes)

    def stale_after(self, rule: Rule) -> float | None:
        """How long the inputs of ``rule`` may stay silent before its fail-safe applies."""
        guarded = [s for p in rule.writes if (s := self._fail_safe(p)) is not None]
        if not guarded or not rule.inputs:
            return None
        if rule.stale_after is not None:
            return rule.stale_after
        configured = [s.stale_after for s in guarded if s.stale_after is not None]
        return min(configured) if configured else self.default_stale_after

    def stale_inputs(self, rule: Rule, inputs: Inputs, now: float) -> list[str]:
        """The inputs of ``rule`` silent for its ``stale_after`` at ``now``."""
        limit = self.stale_after(rule)
        if limit is None:
            return []
        return [p for p in sorted(rule.inputs) if inputs.silent(p, limit, now)]

    def deadline(self, rule: Rule, state: RuleState, inputs: Inputs) -> float | None:
        """When the first input of ``rule`` goes stale, unless a fail-safe already applies."""
        limit = self.stale_after(rule) if state.failsafe is None else None
        if limit is None:
            return None
        return min(inputs.silent_at(p, limit) for p in rule.inputs)

    def commands(self, rule: Rule, reason: str, now: float) -> list[FailSafeCommand]:
        """The fail-safe value of every guarded point ``rule`` writes."""
        out: list[FailSafeCommand] = []
        for point in rule.writes:
            settings = self._fail_safe(point)
            if settings is not None:
                assert settings.fail_safe is not None
                out.append(FailSafeCommand(now, rule.name, point, settings.fail_safe, reason))
        return out

    def release(self, held: Mapping[str, str]) -> list[str]:
        """Stop holding points no longer in ``held``; returns them, for their rules to take over."""
        released = [p for p in self.held if p not in held]
        for point in released:
            del self.held[point]
        return released

    def hold(self, held: Mapping[str, str], now: float) -> list[FailSafeCommand]:
        """Hold each guarded point of ``held`` not yet held at its fail-safe value."""
        out: list[FailSafeCommand] = []
        for point, source in sorted(held.items()):
            if point in self.held or self._fail_safe(point) is None:
                continue
            self.held[point] = source
            out.append(self.held_command(point, now))
        return out

    def held_command(self, point: str, now: float) -> FailSafeCommand:
        """The command that writes a held point its fail-safe value."""
        value = self.actuators[point].fail_safe
        assert value is not None
        source = self.held[point]
        return FailSafeCommand(
            now, source, point, value, f"rule file {source} is broken and no accepted version of it runs"
        )
