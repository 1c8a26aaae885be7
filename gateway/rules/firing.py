"""Trigger firing: which rules each point's readings concern, and the triggers a reading or
the clock fires (changes and thresholds, schedules, silences), with what they remember.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..model import Reading
from .inputs import Inputs
from .model import Rule
from .state import RuleState, RuleStates
from .timeofday import SiteTimes
from .triggers import Evaluate, Trigger


class Firing:
    """Owns the index from points to the rules that fire on them (triggers), re-check on them
    (watched points) or go stale without them (inputs), and the longest window over each."""

    def __init__(self) -> None:
        self.by_trigger: dict[str, list[tuple[Rule, int, Trigger]]] = {}
        self.by_watch: dict[str, list[Rule]] = {}
        self.by_input: dict[str, list[Rule]] = {}
        self.window_spans: dict[str, float] = {}

    def index(self, rules: Iterable[Rule]) -> None:
        self.by_trigger, self.by_watch, self.by_input, self.window_spans = {}, {}, {}, {}
        for rule in rules:
            for index, trigger in enumerate(rule.triggers):
                for p in trigger.reads:
                    self.by_trigger.setdefault(p, []).append((rule, index, trigger))
            for p in rule.watches:
                self.by_watch.setdefault(p, []).append(rule)
            for p in {*rule.inputs, *(t.silence.point for t in rule.triggers if t.silence is not None)}:
                self.by_input.setdefault(p, []).append(rule)
            for p, seconds in rule.windows.items():
                self.window_spans[p] = max(seconds, self.window_spans.get(p, 0.0))

    @property
    def points(self) -> frozenset[str]:
        """Every point the indexed rules read."""
        return (
            frozenset(self.by_trigger)
            | frozenset(self.by_watch)
            | frozenset(self.by_input)
            | frozenset(self.window_spans)
        )

    def concerns(self, point: str) -> bool:
        return (
            point in self.by_trigger
            or point in self.by_watch
            or point in self.by_input
            or point in self.window_spans
        )


def on_reading(
    triggered: Iterable[tuple[Rule, int, Trigger]], r: Reading, states: RuleStates, evaluate: Evaluate
) -> Iterator[tuple[Rule, Trigger]]:
    """The rules a reading fires, one trigger each, lazily: the caller starts each rule before
    the next trigger judges the reading. A rule whose trigger memory changed is marked to save."""
    fired: set[str] = set()
    for rule, index, trigger in triggered:
        if rule.name in fired:
            continue
        result = trigger.on_reading(r, states[rule.name].memory, str(index), evaluate)
        if result.changed:
            states.touch(rule.name)
        if result.fires:
            fired.add(rule.name)
            yield rule, trigger


def heard(rule: Rule, state: RuleState, point: str) -> bool:
    """``point`` reported: re-arm the silence triggers of ``rule`` on it. True if one was armed."""
    rearmed = False
    for index, trigger in enumerate(rule.triggers):
        silence = trigger.silence
        if silence is not None and silence.point == point and state.memory.get(str(index)):
            state.memory[str(index)] = False
            rearmed = True
    return rearmed


def schedule(rule: Rule, state: RuleState, times: SiteTimes, after: float) -> None:
    """Give every timed trigger of ``rule`` without a due time its next one after ``after``."""
    for index, trigger in enumerate(rule.triggers):
        if index in state.next_at:
            continue
        when = trigger.next_time(times, after)
        if when is not None:
            state.next_at[index] = when


def due(
    rule: Rule, state: RuleState, times: SiteTimes, inputs: Inputs, now: float
) -> Iterator[tuple[Trigger, bool]]:
    """The triggers of ``rule`` the clock fires at ``now``, lazily, each with whether the
    rule's durable state changed (a saved schedule moved on, a silence was noted)."""
    for index, trigger in enumerate(rule.triggers):
        when = state.next_at.get(index)
        if when is not None and when <= now:
            nxt = trigger.next_time(times, now)
            if nxt is None:
                state.next_at.pop(index, None)
            else:
                state.next_at[index] = nxt
            yield trigger, trigger.saves_schedule
        silence = trigger.silence
        if silence is not None and not state.memory.get(str(index)):
            if inputs.silent(silence.point, silence.seconds, now):
                state.memory[str(index)] = True
                yield trigger, True


def deadlines(rule: Rule, state: RuleState, inputs: Inputs) -> list[float]:
    """When the schedules of ``rule`` are due and its silences would be noted."""
    times = list(state.next_at.values())
    for index, trigger in enumerate(rule.triggers):
        silence = trigger.silence
        if silence is not None and not state.memory.get(str(index)):
            times.append(inputs.silent_at(silence.point, silence.seconds))
    return times
