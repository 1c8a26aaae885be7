"""``when = "expression"``: the expression turns true (like a Home Assistant template trigger,
only a false -> true change fires, so a condition already true at start-up does not)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...model import Reading
from ...options import Table
from ..expr import EvalError, Expr, truth
from .base import NOT_FIRED, Compile, Evaluate, Fired, Trigger

KEY = "when"


@dataclass(frozen=True, slots=True)
class BecomesTrue(Trigger):
    """Fires when ``condition`` turns from false (or not yet known) to true."""

    condition: Expr

    @property
    def reads(self) -> tuple[str, ...]:
        return tuple(sorted(self.condition.points))

    @property
    def expr(self) -> Expr | None:
        return self.condition

    def on_reading(self, reading: Reading, memory: dict[str, Any], key: str, evaluate: Evaluate) -> Fired:
        try:
            now_true = truth(evaluate(self.condition))
        except EvalError:
            return NOT_FIRED
        previous = memory.get(key)
        memory[key] = now_true
        return Fired(now_true and previous is False, changed=previous != now_true)


def parse(table: Table, readable: Mapping[str, Any], compile: Compile) -> Trigger | None:
    text = table.str("when")
    table.finish()
    condition = compile(table, "when", text, readable) if text is not None else None
    return None if condition is None else BecomesTrue(f"when {text}", condition)
