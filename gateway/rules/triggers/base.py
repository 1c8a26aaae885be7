"""What every trigger kind is: a frozen value with hooks the engine calls, each kind in a
module of its own (``gateway/rules/triggers/``) found through ``PARSERS``, as Home Assistant's
trigger platforms are.

A kind overrides only the hooks it needs: readings it judges (``reads``, ``on_reading``),
times it is due (``next_time``), or a point whose silence it watches (``silence``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ...model import Reading
from ...options import Table
from ...problems import did_you_mean
from ..expr import Expr
from ..timeofday import SiteTimes

#: evaluate an expression against the engine's latest readings (raises EvalError)
Evaluate = Callable[[Expr], Any]


@dataclass(frozen=True, slots=True)
class Fired:
    """What a reading did to a trigger: whether it fires, and whether its remembered state
    changed (so the rule's state is saved)."""

    fires: bool
    changed: bool = False


NOT_FIRED = Fired(False)


@dataclass(frozen=True, slots=True)
class Silence:
    """A point whose silence for ``seconds`` fires the trigger (once, until it reports again)."""

    point: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Trigger:
    """What starts a rule; ``label`` says it in a technician's words (health, ``gateway rules``)."""

    label: str

    #: True when reaching a scheduled time changes what a restart must know (cron and sun
    #: times are saved; an ``every`` interval simply starts again)
    saves_schedule: ClassVar[bool] = True
    #: True when the trigger needs the site's sun times (and so its location)
    uses_sun: ClassVar[bool] = False

    @property
    def reads(self) -> tuple[str, ...]:
        """Points whose every reading ``on_reading`` judges."""
        return ()

    @property
    def expr(self) -> Expr | None:
        """The trigger's expression, if it has one (its windows and sun use count for the rule)."""
        return None

    @property
    def silence(self) -> Silence | None:
        return None

    def on_reading(self, reading: Reading, memory: dict[str, Any], key: str, evaluate: Evaluate) -> Fired:
        """Judge a reading of one of ``reads``; ``memory[key]`` is this trigger's own state."""
        return NOT_FIRED

    def next_time(self, times: SiteTimes, after: float) -> float | None:
        """The next time after ``after`` this trigger is due, or None: it is not timed."""
        return None


class Compile(Protocol):
    """Compiles an expression from the rule file, reporting problems under ``key``."""

    def __call__(self, table: Table, key: str, text: Any, readable: Mapping[str, Any]) -> Expr | None: ...


class Parse(Protocol):
    """A trigger kind's parser: its ``[[rule.trigger]]`` table (problems reported through it)
    into the trigger, or None when the table has problems."""

    def __call__(self, table: Table, readable: Mapping[str, Any], compile: Compile) -> Trigger | None: ...


def known_point(table: Table, key: str, name: str | None, readable: Mapping[str, Any]) -> str | None:
    """``name`` if it is a point rules may read, else None with a did-you-mean problem."""
    if name is None:
        return None
    if name not in readable:
        table.error(key, f"unknown point '{name}'{did_you_mean(name, readable)}")
        return None
    return name
