"""The sans-IO rule evaluator: readings and time in, commands out; no clock, no sockets.

``feed`` takes readings, ``tick`` handles timers that are due, ``next_deadline`` says when
to call ``tick`` next. State per rule can be exported and restored so timers survive a restart.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, assert_never

from ..actuators import ActuatorSettings
from ..model import Reading, Value
from .expr import EvalError, Expr, truth
from .model import (
    MAX_QUEUED,
    RULES_EVENT_POINT,
    Command,
    Delay,
    EventCommand,
    FailSafeCommand,
    PublishCommand,
    PublishVirtual,
    RaiseEvent,
    Rule,
    RuleNotice,
    SetCommand,
    SetPoint,
)
from .state import RuleState
from .timeofday import SiteTimes, SunSpec
from .triggers import Trigger

DEFAULT_STALE_AFTER = 300.0
#: a schedule (cron, sun) missed while the gateway was down fires at start if this recent
CATCH_UP = 3600.0


class NoValue(EvalError):
    """A point has no reading yet: the rule waits quietly instead of raising an error."""


class _Env:
    """The view of the world an expression evaluates against."""

    __slots__ = ("engine",)

    def __init__(self, engine: Engine):
        self.engine = engine

    def value(self, point: str) -> Value:
        latest = self.engine.latest.get(point)
        if latest is None:
            raise NoValue(f"no reading of {point} yet")
        return latest[0]

    def age(self, point: str) -> float:
        latest = self.engine.latest.get(point)
        if latest is None:
            return self.engine.now - self.engine.started_at
        return self.engine.now - latest[1]

    def window(self, point: str, seconds: float) -> list[float]:
        since = self.engine.now - seconds
        return [v for ts, v in self.engine.windows.get(point, ()) if ts >= since]

    def now(self) -> float:
        return self.engine.now

    def local_hour(self) -> float:
        return self.engine.times.local_hour(self.engine.now)

    def weekday(self) -> int:
        return self.engine.times.local(self.engine.now).weekday()

    def sun_between(self, start: SunSpec, end: SunSpec) -> bool:
        return self.engine.times.sun_between(start, end, self.engine.now)

    def sun_elevation(self) -> float:
        return self.engine.times.sun_elevation(self.engine.now)


class Engine:
    def __init__(
        self,
        times: SiteTimes,
        actuators: Mapping[str, ActuatorSettings] | None = None,
        *,
        now: float,
        default_stale_after: float = DEFAULT_STALE_AFTER,
    ):
        self.times = times
        self.actuators = dict(actuators or {})
        self.default_stale_after = default_stale_after
        self.now = now
        self.started_at = now
        self.rules: dict[str, Rule] = {}
        self.states: dict[str, RuleState] = {}
        self.latest: dict[str, tuple[Value, float]] = {}
        self.windows: dict[str, collections.deque[tuple[float, float]]] = {}
        self._window_span: dict[str, float] = {}
        self._by_trigger_point: dict[str, list[tuple[Rule, int, Trigger]]] = {}
        self._by_watch: dict[str, list[Rule]] = {}
        self._by_input: dict[str, list[Rule]] = {}
        self._last_set: dict[str, Value] = {}
        self._dirty: set[str] = set()
        self._removed: set[str] = set()
        self._deadline: float | None = None
        self._deadline_stale = True
        self._env = _Env(self)
        self.evaluations = 0
        #: point -> rule file: held at its fail-safe value because the file that would drive it
        #: is broken and has no version running; rules writing the point step back meanwhile
        self.held: dict[str, str] = {}

    # -- rule set -------------------------------------------------------------------------

    def load(self, rules: Iterable[Rule], saved: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Install a new rule set. A rule whose text is unchanged keeps its state; a new or
        edited rule starts from ``saved`` state when the fingerprint matches, else fresh."""
        new = {r.name: r for r in rules}
        for name in set(self.states) - set(new):
            del self.states[name]
            self._removed.add(name)
        for name, rule in new.items():
            state = self.states.get(name)
            if state is not None and state.fingerprint == rule.fingerprint:
                continue
            data = (saved or {}).get(name)
            if data and data.get("fingerprint") == rule.fingerprint:
                state = RuleState.restore(data)
                # a sunset missed during a power cut still switches the lamps on at start
                state.next_at = {i: t for i, t in state.next_at.items() if t >= self.now - CATCH_UP}
            else:
                state = RuleState(fingerprint=rule.fingerprint)
                self._dirty.add(name)
            self.states[name] = state
        self.rules = new
        self._index()
        for rule in new.values():
            self._schedule(rule, self.states[rule.name], self.now)
        self._deadline_stale = True

    def _index(self) -> None:
        self._by_trigger_point = {}
        self._by_watch = {}
        self._by_input = {}
        spans: dict[str, float] = {}
        for rule in self.rules.values():
            for index, trigger in enumerate(rule.triggers):
                for p in trigger.reads:
                    self._by_trigger_point.setdefault(p, []).append((rule, index, trigger))
            for p in rule.watches:
                self._by_watch.setdefault(p, []).append(rule)
            for p in {*rule.inputs, *(t.silence.point for t in rule.triggers if t.silence is not None)}:
                self._by_input.setdefault(p, []).append(rule)
            for p, seconds in rule.windows.items():
                spans[p] = max(seconds, spans.get(p, 0.0))
        self._window_span = spans
        for p in list(self.windows):
            if p not in spans:
                del self.windows[p]

    @property
    def points(self) -> frozenset[str]:
        """Every point the loaded rules read; readings of other points can be skipped."""
        return (
            frozenset(self._by_trigger_point)
            | frozenset(self._by_watch)
            | frozenset(self._by_input)
            | frozenset(self._window_span)
        )

    # -- inputs ---------------------------------------------------------------------------

    def prime(self, readings: Iterable[Reading]) -> None:
        """Fill latest values and windows from history without firing anything."""
        for r in sorted(readings, key=lambda r: r.ts):
            self._record(r)

    def _record(self, r: Reading) -> bool:
        current = self.latest.get(r.point)
        if current is not None and r.ts < current[1]:
            return False
        self.latest[r.point] = (r.value, r.ts)
        span = self._window_span.get(r.point)
        if span is not None and isinstance(r.value, int | float) and not isinstance(r.value, bool):
            window = self.windows.setdefault(r.point, collections.deque())
            window.append((r.ts, float(r.value)))
            cutoff = r.ts - span
            while window and window[0][0] < cutoff:
                window.popleft()
        return True

    def feed(self, readings: Sequence[Reading], now: float) -> list[Command]:
        self.now = max(self.now, now)
        out: list[Command] = []
        for r in readings:
            triggered = self._by_trigger_point.get(r.point)
            watched = self._by_watch.get(r.point)
            inputs = self._by_input.get(r.point)
            if triggered is None and watched is None and inputs is None and r.point not in self._window_span:
                continue
            if not self._record(r):
                continue
            if inputs:
                self._on_input(r.point, inputs, out)
            fired: set[str] = set()
            for rule, index, trigger in triggered or ():
                if rule.name in fired:
                    continue
                if self._trigger_fires(rule, index, trigger, r):
                    fired.add(rule.name)
                    self._start(rule, out, cause=trigger.label)
            for rule in watched or ():
                if rule.name not in fired:
                    self._recheck(rule, out)
        return out

    def _on_input(self, point: str, rules: list[Rule], out: list[Command]) -> None:
        for rule in rules:
            state = self.states[rule.name]
            for index, trigger in enumerate(rule.triggers):
                silence = trigger.silence
                if silence is not None and silence.point == point and state.memory.get(str(index)):
                    state.memory[str(index)] = False
                    self._deadline_stale = True
            if state.failsafe == "stale" and not self._stale_inputs(rule):
                state.failsafe = None
                self._dirty.add(rule.name)
                self._deadline_stale = True
                self._emit_rule_event(rule, "recovered", "inputs fresh again; rule in control", out)
                self._start(rule, out, cause="inputs recovered", force=True)

    def _trigger_fires(self, rule: Rule, index: int, trigger: Trigger, r: Reading) -> bool:
        fired = trigger.on_reading(r, self.states[rule.name].memory, str(index), self._evaluate)
        if fired.changed:
            self._dirty.add(rule.name)
        return fired.fires

    def _value_of(self, action: SetPoint | PublishVirtual | RaiseEvent) -> Any:
        """The value a step writes, publishes or appends to its message (EvalError when it
        cannot be evaluated now)."""
        if action.expr is not None:
            return action.expr(self._env)
        return None if isinstance(action, RaiseEvent) else action.value

    def _evaluate(self, expr: Expr) -> Any:
        self.evaluations += 1
        return expr(self._env)

    # -- running rules --------------------------------------------------------------------

    def _conditions_hold(self, rule: Rule, out: list[Command]) -> bool | None:
        """True/False, or None when the rule cannot evaluate now."""
        state = self.states[rule.name]
        try:
            for condition in rule.conditions:
                self.evaluations += 1
                if not truth(condition(self._env)):
                    result = False
                    break
            else:
                result = True
        except NoValue:
            return None
        except EvalError as exc:
            self._fail(rule, str(exc), out)
            return None
        if state.error is not None and not state.memory.get("error_in_action"):
            self._recovered(rule, out)
        return result

    def _recovered(self, rule: Rule, out: list[Command]) -> None:
        state = self.states[rule.name]
        was_failsafe = state.failsafe == "error"
        state.error = None
        if was_failsafe:
            state.failsafe = None
        state.memory.pop("error_in_action", None)
        self._dirty.add(rule.name)
        self._deadline_stale = True
        self._emit_rule_event(
            rule, "recovered", "evaluates again" + ("; rule in control" if was_failsafe else ""), out
        )

    def _start(self, rule: Rule, out: list[Command], *, cause: str, force: bool = False) -> None:
        state = self.states[rule.name]
        if state.failsafe == "stale" and not force:
            return
        busy = state.hold_until is not None or state.step is not None
        if busy:
            if state.hold_until is not None and rule.mode != "restart":
                # a new trigger while the `for` runs: the timer keeps going if still true
                self._recheck(rule, out)
                return
            if rule.mode == "single":
                state.skipped += 1
                return
            if rule.mode == "queued":
                state.queued = min(state.queued + 1, MAX_QUEUED)
                self._dirty.add(rule.name)
                return
            # restart: drop the running step or `for` timer and begin again
            state.hold_since = state.hold_until = state.step = state.resume_at = None
            state.latched = False
            self._dirty.add(rule.name)
            self._deadline_stale = True
        if self.now < state.cooldown_until and not force:
            state.skipped += 1
            return
        holds = self._conditions_hold(rule, out)
        if holds is None:
            return
        if not holds:
            if state.latched:
                state.latched = False
                self._dirty.add(rule.name)
            return
        if rule.hold_for > 0:
            if state.latched:
                return
            state.hold_since = self.now
            state.hold_until = self.now + rule.hold_for
            self._dirty.add(rule.name)
            self._deadline_stale = True
            return
        self._run(rule, out)

    def _recheck(self, rule: Rule, out: list[Command]) -> None:
        """A watched point changed: cancel a `for` timer or re-arm a latch when false."""
        state = self.states[rule.name]
        if state.hold_until is None and not state.latched:
            return
        if state.failsafe is not None:
            return
        holds = self._conditions_hold(rule, out)
        if holds is False:
            state.hold_since = state.hold_until = None
            state.latched = False
            self._dirty.add(rule.name)
            self._deadline_stale = True

    def _run(self, rule: Rule, out: list[Command]) -> None:
        state = self.states[rule.name]
        state.hold_since = state.hold_until = None
        state.latched = rule.hold_for > 0
        state.step = 0
        state.last_fired = self.now
        state.fired += 1
        self._dirty.add(rule.name)
        self._continue(rule, out)

    def _continue(self, rule: Rule, out: list[Command]) -> None:
        state = self.states[rule.name]
        while state.step is not None and state.step < len(rule.actions):
            action = rule.actions[state.step]
            state.step += 1
            if isinstance(action, Delay):
                state.resume_at = self.now + action.seconds
                self._deadline_stale = True
                return
            try:
                value = self._value_of(action)
            except NoValue:
                state.step = state.resume_at = None  # an input has no reading yet: wait quietly
                return
            except EvalError as exc:
                state.step = state.resume_at = None
                self._fail(rule, f"{action.verb} {action.target}: {exc}", out, in_action=True)
                return
            match action:
                case SetPoint(target=target):
                    if target in self.held:
                        continue  # held at its fail-safe while a rule file driving it is broken
                    if value is None or (
                        action.expr is not None and isinstance(value, float) and value != value
                    ):
                        continue
                    if self._last_set.get(target) == value and type(self._last_set[target]) is type(value):
                        continue
                    self._last_set[target] = value
                    out.append(SetCommand(self.now, rule.name, target, value))
                case PublishVirtual(target=target, unit=unit):
                    if value is not None:  # as for set: an expression that gives nothing publishes nothing
                        out.append(PublishCommand(self.now, rule.name, target, value, unit))
                case RaiseEvent(target=target, message=message):
                    if action.expr is not None:
                        message = f"{message}{' ' if message else ''}{value}"
                    out.append(EventCommand(self.now, rule.name, target, message))
                case _:
                    assert_never(action)
        state.step = state.resume_at = None
        state.cooldown_until = self.now + rule.cooldown
        if state.error is not None:
            self._recovered(rule, out)
        if state.queued > 0:
            state.queued -= 1
            self._start(rule, out, cause="queued")

    # -- fail-safe ------------------------------------------------------------------------

    def stale_after(self, rule: Rule) -> float | None:
        """How long the inputs of ``rule`` may stay silent before its fail-safe applies."""
        guarded = [
            self.actuators[p]
            for p in rule.writes
            if p in self.actuators and self.actuators[p].fail_safe is not None
        ]
        if not guarded or not rule.inputs:
            return None
        if rule.stale_after is not None:
            return rule.stale_after
        configured = [s.stale_after for s in guarded if s.stale_after is not None]
        return min(configured) if configured else self.default_stale_after

    def _stale_inputs(self, rule: Rule) -> list[str]:
        limit = self.stale_after(rule)
        if limit is None:
            return []
        return [p for p in sorted(rule.inputs) if self.now - self._last_seen(p) >= limit]

    def _last_seen(self, point: str) -> float:
        """When ``point`` last reported; the engine's start for one that never did."""
        latest = self.latest.get(point)
        return latest[1] if latest is not None else self.started_at

    def _fail(self, rule: Rule, message: str, out: list[Command], *, in_action: bool = False) -> None:
        state = self.states[rule.name]
        if in_action:
            state.memory["error_in_action"] = True
        if state.error != message:
            state.error = message
            self._dirty.add(rule.name)
            out.append(RuleNotice(self.now, rule.name, RULES_EVENT_POINT, message, error=True))
        guarded = any(
            self.actuators.get(p) is not None and self.actuators[p].fail_safe is not None for p in rule.writes
        )
        if guarded and state.failsafe is None:
            state.failsafe = "error"
            self._apply_failsafe(rule, f"cannot evaluate: {message}", out)

    def _apply_failsafe(self, rule: Rule, reason: str, out: list[Command]) -> None:
        state = self.states[rule.name]
        state.hold_since = state.hold_until = state.step = state.resume_at = None
        state.latched = False
        self._dirty.add(rule.name)
        self._deadline_stale = True
        for point in rule.writes:
            settings = self.actuators.get(point)
            if settings is None or settings.fail_safe is None:
                continue
            self._last_set[point] = settings.fail_safe
            out.append(FailSafeCommand(self.now, rule.name, point, settings.fail_safe, reason))

    def _emit_rule_event(self, rule: Rule, what: str, message: str, out: list[Command]) -> None:
        out.append(
            RuleNotice(self.now, rule.name, RULES_EVENT_POINT, f"{what}: {message}", error=what == "error")
        )

    def hold_failsafe(self, held: Mapping[str, str]) -> list[Command]:
        """Hold each point of ``held`` (point -> broken rule file) at its fail-safe value and
        release points no longer listed, so the rules driving them take over again."""
        out: list[Command] = []
        for point in [p for p in self.held if p not in held]:
            del self.held[point]
            out.extend(self.reassert(point))
        for point, source in sorted(held.items()):
            settings = self.actuators.get(point)
            if point in self.held or settings is None or settings.fail_safe is None:
                continue
            self.held[point] = source
            out.append(self._held_command(point))
        return out

    def _held_command(self, point: str) -> FailSafeCommand:
        value = self.actuators[point].fail_safe
        assert value is not None
        self._last_set[point] = value
        source = self.held[point]
        return FailSafeCommand(
            self.now, source, point, value, f"rule file {source} is broken and no accepted version of it runs"
        )

    # -- time -----------------------------------------------------------------------------

    def _schedule(self, rule: Rule, state: RuleState, after: float) -> None:
        for index, trigger in enumerate(rule.triggers):
            if index in state.next_at:
                continue
            when = self._next_time(trigger, after)
            if when is not None:
                state.next_at[index] = when

    def _next_time(self, trigger: Trigger, after: float) -> float | None:
        return trigger.next_time(self.times, after)

    def next_deadline(self) -> float | None:
        """The earliest time ``tick`` has something to do (may be early, never late)."""
        if self._deadline_stale:
            self._deadline = self._compute_deadline()
            self._deadline_stale = False
        return self._deadline

    def _compute_deadline(self) -> float | None:
        times: list[float] = []
        for rule in self.rules.values():
            state = self.states[rule.name]
            if state.hold_until is not None:
                times.append(state.hold_until)
            if state.resume_at is not None:
                times.append(state.resume_at)
            times.extend(state.next_at.values())
            for index, trigger in enumerate(rule.triggers):
                silence = trigger.silence
                if silence is not None and not state.memory.get(str(index)):
                    times.append(self._last_seen(silence.point) + silence.seconds)
            limit = self.stale_after(rule) if state.failsafe is None else None
            if limit is not None:
                times.append(min(self._last_seen(p) for p in rule.inputs) + limit)
        return min(times) if times else None

    def tick(self, now: float) -> list[Command]:
        """Handle every timer due at or before ``now``."""
        self.now = max(self.now, now)
        out: list[Command] = []
        for rule in list(self.rules.values()):
            state = self.states[rule.name]
            if state.failsafe is None and self.stale_after(rule) is not None:
                stale = self._stale_inputs(rule)
                if stale:
                    state.failsafe = "stale"
                    self._apply_failsafe(
                        rule, f"no reading of {', '.join(stale)} for {self.stale_after(rule):g}s", out
                    )
            if state.hold_until is not None and state.hold_until <= self.now:
                holds = self._conditions_hold(rule, out)
                state.hold_since = state.hold_until = None
                self._dirty.add(rule.name)
                if holds:
                    self._run(rule, out)
            if state.resume_at is not None and state.resume_at <= self.now:
                state.resume_at = None
                self._continue(rule, out)
            for index, trigger in enumerate(rule.triggers):
                due = state.next_at.get(index)
                if due is not None and due <= self.now:
                    nxt = self._next_time(trigger, self.now)
                    if nxt is None:
                        state.next_at.pop(index, None)
                    else:
                        state.next_at[index] = nxt
                    if trigger.saves_schedule:
                        self._dirty.add(rule.name)
                    self._start(rule, out, cause=trigger.label)
                silence = trigger.silence
                if silence is not None and not state.memory.get(str(index)):
                    if self.now - self._last_seen(silence.point) >= silence.seconds:
                        state.memory[str(index)] = True
                        self._dirty.add(rule.name)
                        self._start(rule, out, cause=trigger.label)
        self._deadline_stale = True
        return out

    # -- outputs and persistence ----------------------------------------------------------

    def forget_output(self, point: str) -> None:
        """The last command for ``point`` did not reach it: send the next value again."""
        self._last_set.pop(point, None)

    def desired(self, point: str) -> tuple[str, Value] | None:
        """The rule and value that last asked for ``point``, to re-apply after an override."""
        value = self._last_set.get(point)
        if value is None:
            return None
        owner = next((r.name for r in self.rules.values() if point in r.writes), "")
        return owner, value

    def reassert(self, point: str) -> list[Command]:
        """An override of ``point`` ended: re-evaluate the rules that drive it."""
        out: list[Command] = []
        self._last_set.pop(point, None)
        if point in self.held:
            return [self._held_command(point)]
        for rule in self.rules.values():
            if point in rule.writes:
                state = self.states[rule.name]
                if state.failsafe is not None:
                    self._apply_failsafe(rule, f"override of {point} ended while in fail-safe", out)
                    continue
                state.latched = False
                self._start(rule, out, cause=f"override of {point} ended", force=True)
        return out

    def take_dirty(self) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Durable state of rules changed since the last call, and names of removed rules."""
        changed = {name: self.states[name].export() for name in self._dirty if name in self.states}
        removed = set(self._removed)
        self._dirty.clear()
        self._removed.clear()
        return changed, removed

    def status(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, state in self.states.items():
            out[name] = {
                "file": self.rules[name].file,
                "fired": state.fired,
                "last_fired": _iso(state.last_fired),
                "holding_until": _iso(state.hold_until),
                "running": state.step is not None,
                "failsafe": state.failsafe,
                "error": state.error,
                "skipped_triggers": state.skipped,
            }
        return out


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
