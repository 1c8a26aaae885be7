"""The mode and ``for`` state machine of one rule: what a trigger does while the rule is busy
(single, restart, queued), cooldown, the ``for`` timer and its latch, and a run's start and end.

Pure functions on a ``RuleState``; the engine evaluates conditions and saves what changed.
"""

from __future__ import annotations

import enum

from .model import MAX_QUEUED, Rule
from .state import RuleState


class Admit(enum.Enum):
    """What a trigger does to a rule, given its mode and whether it is busy."""

    PROCEED = "proceed"  # idle: check the conditions
    RESTARTED = "restarted"  # restart mode: the running step or timer was dropped; check again
    RECHECK = "recheck"  # a `for` timer runs: it keeps going while the conditions hold
    SKIPPED = "skipped"  # single mode: the trigger is ignored
    QUEUED = "queued"  # queued mode: the run waits its turn


class Settle(enum.Enum):
    """What the rule does once its conditions are known at a trigger."""

    NOTHING = "nothing"
    UNLATCHED = "unlatched"  # false again: the next true starts a `for` timer again
    HOLDING = "holding"  # a `for` timer started
    RUN = "run"  # run the actions now


def admit(rule: Rule, state: RuleState) -> Admit:
    """A trigger arrives; counts a skipped or queued trigger, resets the rule on a restart."""
    busy = state.hold_until is not None or state.step is not None
    if not busy:
        return Admit.PROCEED
    if state.hold_until is not None and rule.mode != "restart":
        return Admit.RECHECK
    if rule.mode == "single":
        state.skipped += 1
        return Admit.SKIPPED
    if rule.mode == "queued":
        state.queued = min(state.queued + 1, MAX_QUEUED)
        return Admit.QUEUED
    reset(state)
    return Admit.RESTARTED


def cooling(state: RuleState, now: float) -> bool:
    """True while triggers are ignored after a run (counted as skipped)."""
    if now < state.cooldown_until:
        state.skipped += 1
        return True
    return False


def settle(rule: Rule, state: RuleState, holds: bool, now: float) -> Settle:
    """The conditions are known after a trigger: unlatch, start the `for` timer, or run."""
    if not holds:
        if state.latched:
            state.latched = False
            return Settle.UNLATCHED
        return Settle.NOTHING
    if rule.hold_for > 0:
        if state.latched:
            return Settle.NOTHING
        state.hold_since = now
        state.hold_until = now + rule.hold_for
        return Settle.HOLDING
    return Settle.RUN


def watching(state: RuleState) -> bool:
    """True when a watched point's change matters: a `for` timer runs or a latch is set."""
    return state.hold_until is not None or state.latched


def hold_due(state: RuleState, now: float) -> bool:
    return state.hold_until is not None and state.hold_until <= now


def end_hold(state: RuleState) -> None:
    """The `for` timer ran out or its condition went false."""
    state.hold_since = state.hold_until = None


def reset(state: RuleState) -> None:
    """Drop a running step, `for` timer and latch (a restart, a fail-safe)."""
    state.hold_since = state.hold_until = state.step = state.resume_at = None
    state.latched = False


def begin_run(rule: Rule, state: RuleState, now: float) -> None:
    state.hold_since = state.hold_until = None
    state.latched = rule.hold_for > 0
    state.step = 0
    state.last_fired = now
    state.fired += 1


def resume_due(state: RuleState, now: float) -> bool:
    """A `delay` step ran out: clears it, so the caller continues the actions."""
    if state.resume_at is not None and state.resume_at <= now:
        state.resume_at = None
        return True
    return False


def stop_steps(state: RuleState) -> None:
    state.step = state.resume_at = None


def end_run(rule: Rule, state: RuleState, now: float) -> None:
    stop_steps(state)
    state.cooldown_until = now + rule.cooldown


def take_queued(state: RuleState) -> bool:
    """True when a queued trigger waits to run now that a run ended."""
    if state.queued > 0:
        state.queued -= 1
        return True
    return False


def deadlines(state: RuleState) -> list[float]:
    """When this rule's `for` timer or `delay` step is due."""
    return [t for t in (state.hold_until, state.resume_at) if t is not None]
