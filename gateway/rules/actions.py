"""What one action step asks for: the value it writes, publishes or appends to its message,
and the command that carries it (or none: a write already asked for, a point held at fail-safe).
"""

from __future__ import annotations

from collections.abc import Container, MutableMapping
from typing import Any, assert_never

from ..model import Value
from .expr import Env
from .model import Command, EventCommand, PublishCommand, PublishVirtual, RaiseEvent, SetCommand, SetPoint

Step = SetPoint | PublishVirtual | RaiseEvent


def value_of(action: Step, env: Env) -> Any:
    """The value a step writes, publishes or appends to its message (EvalError when it
    cannot be evaluated now)."""
    if action.expr is not None:
        return action.expr(env)
    return None if isinstance(action, RaiseEvent) else action.value


def command(
    action: Step,
    value: Any,
    rule: str,
    now: float,
    *,
    held: Container[str],
    last_set: MutableMapping[str, Value],
) -> Command | None:
    """The command for a step with its value, or None when there is nothing to send. A write
    equal to the last one asked for is skipped; ``last_set`` learns every write sent."""
    match action:
        case SetPoint(target=target):
            if target in held:
                return None  # held at its fail-safe while a rule file driving it is broken
            if value is None or (action.expr is not None and isinstance(value, float) and value != value):
                return None
            if last_set.get(target) == value and type(last_set[target]) is type(value):
                return None
            last_set[target] = value
            return SetCommand(now, rule, target, value)
        case PublishVirtual(target=target, unit=unit):
            if value is None:  # as for set: an expression that gives nothing publishes nothing
                return None
            return PublishCommand(now, rule, target, value, unit)
        case RaiseEvent(target=target, message=message):
            if action.expr is not None:
                message = f"{message}{' ' if message else ''}{value}"
            return EventCommand(now, rule, target, message)
        case _:
            assert_never(action)
