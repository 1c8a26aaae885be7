"""Typed rules, triggers, actions and the commands the engine emits.

Rule files are parsed into these frozen values once; the engine never reads raw TOML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..model import Value
from .expr import Expr
from .triggers import Trigger

MODES = ("single", "restart", "queued")
MAX_QUEUED = 10

#: device name of points published by rules (``virtual/<name>``)
VIRTUAL_DEVICE = "virtual"
#: device name of event readings (``events/<name>``); actuation records go to events/actuation
EVENTS_DEVICE = "events"
RULES_EVENT_POINT = "events/rules"
ACTUATION_EVENT_POINT = "events/actuation"


@dataclass(frozen=True, slots=True)
class SetPoint:
    """``set = "dev/x"``: write a literal ``value`` or the value of ``expr`` through actuation."""

    target: str
    value: Value | None = None
    expr: Expr | None = None

    verb: ClassVar[str] = "set"


@dataclass(frozen=True, slots=True)
class PublishVirtual:
    """``publish = "virtual/x"``: a reading of a virtual point, from ``value`` or ``expr``."""

    target: str
    value: Value | None = None
    expr: Expr | None = None
    unit: str | None = None

    verb: ClassVar[str] = "publish"


@dataclass(frozen=True, slots=True)
class RaiseEvent:
    """``event = "name"``: an ``events/name`` reading with ``message`` (and ``expr``'s value)."""

    target: str
    message: str = ""
    expr: Expr | None = None

    verb: ClassVar[str] = "event"


@dataclass(frozen=True, slots=True)
class Delay:
    """``delay = "30s"``: wait before the next step."""

    seconds: float

    verb: ClassVar[str] = "delay"

    @property
    def expr(self) -> None:
        return None


#: one step of a rule
Action = SetPoint | PublishVirtual | RaiseEvent | Delay


@dataclass(frozen=True)
class Rule:
    """One ``[[rule]]`` of a rule file, parsed: its triggers, conditions, ``for``, mode and
    actions, and what it reads and writes (for indexing and fail-safe)."""

    name: str
    file: str
    description: str
    triggers: tuple[Trigger, ...]
    conditions: tuple[Expr, ...]
    hold_for: float
    mode: str
    cooldown: float
    stale_after: float | None
    actions: tuple[Action, ...]
    fingerprint: str
    #: points whose silence means the rule is working on stale data
    inputs: frozenset[str] = frozenset()
    #: points read by conditions, re-checked while a ``for`` timer runs or the rule is latched
    watches: frozenset[str] = frozenset()
    windows: dict[str, float] = field(default_factory=dict)

    @property
    def writes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.target for a in self.actions if isinstance(a, SetPoint)))

    @property
    def publishes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.target for a in self.actions if isinstance(a, PublishVirtual)))


@dataclass(frozen=True, slots=True)
class SetCommand:
    """A rule writes ``value`` to ``point`` (through actuation, with its limits)."""

    ts: float
    rule: str
    point: str
    value: Value

    kind: ClassVar[str] = "set"


@dataclass(frozen=True, slots=True)
class FailSafeCommand:
    """``point`` goes to its fail-safe ``value``; ``reason`` says why (stale inputs, an error,
    a broken rule file). ``rule`` is the rule, or the broken file holding the point."""

    ts: float
    rule: str
    point: str
    value: Value
    reason: str

    kind: ClassVar[str] = "failsafe"


@dataclass(frozen=True, slots=True)
class PublishCommand:
    """A reading of the virtual ``point``."""

    ts: float
    rule: str
    point: str
    value: Value
    unit: str | None = None

    kind: ClassVar[str] = "publish"


@dataclass(frozen=True, slots=True)
class EventCommand:
    """An ``events/...`` reading a rule raises, carrying ``value`` as its message."""

    ts: float
    rule: str
    point: str
    value: str

    kind: ClassVar[str] = "event"


@dataclass(frozen=True, slots=True)
class RuleNotice:
    """What happened to a rule itself (``events/rules``): an error it hit, or how it went on."""

    ts: float
    rule: str
    point: str
    value: str
    error: bool

    @property
    def kind(self) -> str:
        return "error" if self.error else "info"


#: something the engine wants done at ``ts``
Command = SetCommand | FailSafeCommand | PublishCommand | EventCommand | RuleNotice
#: the commands that write a device point
WriteCommand = SetCommand | FailSafeCommand
