"""The sans-IO rule evaluator: readings and time in, commands out; no clock, no sockets.

``feed`` takes readings, ``tick`` handles timers that are due, ``next_deadline`` says when
to call ``tick`` next. It orchestrates inputs, firing, modes, fail-safe and rule state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..actuators import ActuatorSettings
from ..model import Reading, Value
from . import actions, firing, modes
from .expr import EvalError, Expr, truth
from .failsafe import DEFAULT_STALE_AFTER, FailSafe
from .inputs import Inputs, InputsEnv, NoValue
from .model import RULES_EVENT_POINT, Command, Delay, FailSafeCommand, Rule, RuleNotice
from .state import RuleState, RuleStates, status
from .timeofday import SiteTimes

#: a schedule (cron, sun) missed while the gateway was down fires at start if this recent
CATCH_UP = 3600.0


class Engine:
    """Owns a loaded rule set and runs it: readings and clock in, commands out."""

    def __init__(
        self,
        times: SiteTimes,
        actuators: Mapping[str, ActuatorSettings] | None = None,
        *,
        now: float,
        default_stale_after: float = DEFAULT_STALE_AFTER,
    ):
        self.times = times
        self.now = now
        self.rules: dict[str, Rule] = {}
        self.inputs = Inputs(now=now)
        self.failsafe = FailSafe(actuators or {}, default_stale_after)
        self._states = RuleStates()
        self._firing = firing.Firing()
        self._last_set: dict[str, Value] = {}
        self._deadline: float | None = None
        self._deadline_stale = True
        self._env = InputsEnv(self.inputs, times, self)
        self.evaluations = 0

    @property
    def states(self) -> dict[str, RuleState]:
        return self._states.by_name

    @property
    def started_at(self) -> float:
        return self.inputs.started_at

    @started_at.setter
    def started_at(self, value: float) -> None:
        self.inputs.started_at = value

    @property
    def held(self) -> dict[str, str]:
        """Points held at their fail-safe value (point -> the broken rule file driving it)."""
        return self.failsafe.held

    @property
    def window_spans(self) -> Mapping[str, float]:
        """Point -> the longest window a rule takes over it, in seconds (to prime from history)."""
        return self._firing.window_spans

    @property
    def points(self) -> frozenset[str]:
        """Every point the loaded rules read; readings of other points can be skipped."""
        return self._firing.points

    # -- rule set and inputs --------------------------------------------------------------

    def load(self, rules: Iterable[Rule], saved: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Install a new rule set. A rule whose text is unchanged keeps its state; a new or
        edited rule starts from ``saved`` state when the fingerprint matches, else fresh."""
        new = {r.name: r for r in rules}
        fingerprints = {name: rule.fingerprint for name, rule in new.items()}
        self._states.install(fingerprints, saved or {}, catch_up_since=self.now - CATCH_UP)
        self.rules = new
        self._firing.index(new.values())
        self.inputs.keep_windows(self._firing.window_spans)
        for rule in new.values():
            firing.schedule(rule, self.states[rule.name], self.times, self.now)
        self._deadline_stale = True

    def prime(self, readings: Iterable[Reading]) -> None:
        """Fill latest values and windows from history without firing anything."""
        self.inputs.prime(readings)

    def feed(self, readings: Sequence[Reading], now: float) -> list[Command]:
        self.now = max(self.now, now)
        out: list[Command] = []
        index = self._firing
        for r in readings:
            if not index.concerns(r.point) or not self.inputs.record(r):
                continue
            if inputs := index.by_input.get(r.point):
                self._on_input(r.point, inputs, out)
            fired: set[str] = set()
            for rule, trigger in firing.on_reading(
                index.by_trigger.get(r.point, ()), r, self._states, self._evaluate
            ):
                fired.add(rule.name)
                self._start(rule, out, cause=trigger.label)
            for rule in index.by_watch.get(r.point, ()):
                if rule.name not in fired:
                    self._recheck(rule, out)
        return out

    def _on_input(self, point: str, rules: list[Rule], out: list[Command]) -> None:
        for rule in rules:
            state = self.states[rule.name]
            if firing.heard(rule, state, point):
                self._deadline_stale = True
            if state.failsafe == "stale" and not self.failsafe.stale_inputs(rule, self.inputs, self.now):
                state.failsafe = None
                self._touch(rule)
                self._emit_rule_event(rule, "recovered", "inputs fresh again; rule in control", out)
                self._start(rule, out, cause="inputs recovered", force=True)

    def _evaluate(self, expr: Expr) -> Any:
        self.evaluations += 1
        return expr(self._env)

    def _touch(self, rule: Rule, *, timers: bool = True) -> None:
        """The state of ``rule`` changed: save it, and (``timers``) find the next deadline anew."""
        self._states.touch(rule.name)
        if timers:
            self._deadline_stale = True

    # -- running rules --------------------------------------------------------------------

    def _conditions_hold(self, rule: Rule, out: list[Command]) -> bool | None:
        """True/False, or None when the rule cannot evaluate now."""
        state = self.states[rule.name]
        try:
            result = all(truth(self._evaluate(condition)) for condition in rule.conditions)
        except NoValue:
            return None
        except EvalError as exc:
            self._fail(rule, str(exc), out)
            return None
        if state.error is not None and not state.memory.get("error_in_action"):
            self._recovered(rule, out)
        return result

    def _start(self, rule: Rule, out: list[Command], *, cause: str, force: bool = False) -> None:
        state = self.states[rule.name]
        if state.failsafe == "stale" and not force:
            return
        match modes.admit(rule, state):
            case modes.Admit.RECHECK:
                self._recheck(rule, out)
                return
            case modes.Admit.SKIPPED:
                return
            case modes.Admit.QUEUED:
                self._touch(rule, timers=False)
                return
            case modes.Admit.RESTARTED:
                self._touch(rule)
            case modes.Admit.PROCEED:
                pass
        if not force and modes.cooling(state, self.now):
            return
        holds = self._conditions_hold(rule, out)
        if holds is None:
            return
        match modes.settle(rule, state, holds, self.now):
            case modes.Settle.NOTHING:
                pass
            case modes.Settle.UNLATCHED:
                self._touch(rule, timers=False)
            case modes.Settle.HOLDING:
                self._touch(rule)
            case modes.Settle.RUN:
                self._run(rule, out)

    def _recheck(self, rule: Rule, out: list[Command]) -> None:
        """A watched point changed: cancel a `for` timer or re-arm a latch when false."""
        state = self.states[rule.name]
        if not modes.watching(state) or state.failsafe is not None:
            return
        if self._conditions_hold(rule, out) is False:
            modes.end_hold(state)
            state.latched = False
            self._touch(rule)

    def _run(self, rule: Rule, out: list[Command]) -> None:
        modes.begin_run(rule, self.states[rule.name], self.now)
        self._touch(rule, timers=False)
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
                value = actions.value_of(action, self._env)
            except NoValue:
                modes.stop_steps(state)  # an input has no reading yet: wait quietly
                return
            except EvalError as exc:
                modes.stop_steps(state)
                self._fail(rule, f"{action.verb} {action.target}: {exc}", out, in_action=True)
                return
            command = actions.command(
                action, value, rule.name, self.now, held=self.held, last_set=self._last_set
            )
            if command is not None:
                out.append(command)
        modes.end_run(rule, state, self.now)
        if state.error is not None:
            self._recovered(rule, out)
        if modes.take_queued(state):
            self._start(rule, out, cause="queued")

    # -- errors and fail-safe -------------------------------------------------------------

    def _fail(self, rule: Rule, message: str, out: list[Command], *, in_action: bool = False) -> None:
        state = self.states[rule.name]
        if in_action:
            state.memory["error_in_action"] = True
        if state.error != message:
            state.error = message
            self._touch(rule, timers=False)
            out.append(RuleNotice(self.now, rule.name, RULES_EVENT_POINT, message, error=True))
        if self.failsafe.guards(rule) and state.failsafe is None:
            state.failsafe = "error"
            self._apply_failsafe(rule, f"cannot evaluate: {message}", out)

    def _recovered(self, rule: Rule, out: list[Command]) -> None:
        state = self.states[rule.name]
        was_failsafe = state.failsafe == "error"
        state.error = None
        if was_failsafe:
            state.failsafe = None
        state.memory.pop("error_in_action", None)
        self._touch(rule)
        self._emit_rule_event(
            rule, "recovered", "evaluates again" + ("; rule in control" if was_failsafe else ""), out
        )

    def _apply_failsafe(self, rule: Rule, reason: str, out: list[Command]) -> None:
        modes.reset(self.states[rule.name])
        self._touch(rule)
        self._send_failsafe(self.failsafe.commands(rule, reason, self.now), out)

    def _send_failsafe(self, commands: Iterable[FailSafeCommand], out: list[Command]) -> None:
        for command in commands:
            self._last_set[command.point] = command.value
            out.append(command)

    def _emit_rule_event(self, rule: Rule, what: str, message: str, out: list[Command]) -> None:
        out.append(
            RuleNotice(self.now, rule.name, RULES_EVENT_POINT, f"{what}: {message}", error=what == "error")
        )

    def hold_failsafe(self, held: Mapping[str, str]) -> list[Command]:
        """Hold each point of ``held`` (point -> broken rule file) at its fail-safe value and
        release points no longer listed, so the rules driving them take over again."""
        out: list[Command] = []
        for point in self.failsafe.release(held):
            out.extend(self.reassert(point))
        self._send_failsafe(self.failsafe.hold(held, self.now), out)
        return out

    # -- time -----------------------------------------------------------------------------

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
            times.extend(modes.deadlines(state))
            times.extend(firing.deadlines(rule, state, self.inputs))
            stale = self.failsafe.deadline(rule, state, self.inputs)
            if stale is not None:
                times.append(stale)
        return min(times) if times else None

    def tick(self, now: float) -> list[Command]:
        """Handle every timer due at or before ``now``."""
        self.now = max(self.now, now)
        out: list[Command] = []
        for rule in list(self.rules.values()):
            state = self.states[rule.name]
            if state.failsafe is None and (limit := self.failsafe.stale_after(rule)) is not None:
                stale = self.failsafe.stale_inputs(rule, self.inputs, self.now)
                if stale:
                    state.failsafe = "stale"
                    self._apply_failsafe(rule, f"no reading of {', '.join(stale)} for {limit:g}s", out)
            if modes.hold_due(state, self.now):
                holds = self._conditions_hold(rule, out)
                modes.end_hold(state)
                self._touch(rule, timers=False)
                if holds:
                    self._run(rule, out)
            if modes.resume_due(state, self.now):
                self._continue(rule, out)
            for trigger, changed in firing.due(rule, state, self.times, self.inputs, self.now):
                if changed:
                    self._touch(rule, timers=False)
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
            self._send_failsafe([self.failsafe.held_command(point, self.now)], out)
            return out
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
        return self._states.take_dirty()

    def status(self) -> dict[str, dict[str, Any]]:
        """Per rule, what health and ``gateway rules`` show."""
        return {name: status(self.rules[name], state) for name, state in self.states.items()}
