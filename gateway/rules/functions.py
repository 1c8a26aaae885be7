"""The functions rule expressions may call: window aggregates over a point's recent readings
(avg, min, max, sum, count), arithmetic helpers, a point's value and age, the clock and the
sun. Each builds its node at compile time, so argument mistakes are load errors; a new
function is one builder and one line in ``FUNCTIONS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..units import parse_duration
from .expr import Compiler, Env, EvalError, ExprSyntaxError, FunctionBuilder, Node, as_number, truth
from .timeofday import parse_clock_time, parse_sun_spec


def _arity(args: list[Node], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(args) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise ExprSyntaxError(f"takes {wanted} arguments, got {len(args)}")


def _window_arg(c: Compiler, node: Node) -> float:
    """The window of an aggregate, a quoted duration such as "10m", in seconds."""
    text = c.const_string(node, "the window")
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ExprSyntaxError(str(exc)) from None
    if seconds <= 0:
        raise ExprSyntaxError("the window must be longer than 0s")
    return seconds


def _is_window_call(args: list[Node]) -> bool:
    return len(args) == 2 and all(a.is_const and isinstance(a.const, str) for a in args)


def _window_fn(kind: str) -> Callable[[Compiler, list[Node]], Node]:
    def build(c: Compiler, args: list[Node]) -> Node:
        if kind in ("min", "max") and not _is_window_call(args):
            if len(args) < 2:
                raise ExprSyntaxError(
                    'takes a point and a window such as ("air/pm2_5", "10m"), or two or more numbers'
                )
            fns = [a.fn for a in args]
            pick = min if kind == "min" else max
            return Node(lambda env: pick(as_number(f(env), kind) for f in fns))
        _arity(args, 2)
        point = c.point_arg(args[0])
        seconds = _window_arg(c, args[1])
        c.windows[point] = max(seconds, c.windows.get(point, 0.0))

        def run(env: Env) -> Any:
            values = env.window(point, seconds)
            if kind == "count":
                return len(values)
            if not values:
                raise EvalError(f"no readings of {point} in the last {args[1].const}")
            if kind == "avg":
                return sum(values) / len(values)
            if kind == "sum":
                return sum(values)
            return min(values) if kind == "min" else max(values)

        return Node(run)

    return build


def _fn_abs(c: Compiler, args: list[Node]) -> Node:
    _arity(args, 1)
    f = args[0].fn
    return Node(lambda env: abs(as_number(f(env), "abs")))


def _fn_round(c: Compiler, args: list[Node]) -> Node:
    _arity(args, 1, 2)
    f = args[0].fn
    digits = args[1].fn if len(args) == 2 else (lambda env: 0)

    def run(env: Env) -> Any:
        n = int(as_number(digits(env), "round"))
        value = round(as_number(f(env), "round"), n)
        return int(value) if n == 0 else value

    return Node(run)


def _fn_clamp(c: Compiler, args: list[Node]) -> Node:
    _arity(args, 3)
    f, lo, hi = (a.fn for a in args)
    return Node(
        lambda env: min(
            max(as_number(f(env), "clamp"), as_number(lo(env), "clamp")), as_number(hi(env), "clamp")
        )
    )


def _fn_if(c: Compiler, args: list[Node]) -> Node:
    _arity(args, 3)
    cond, yes, no = (a.fn for a in args)
    return Node(lambda env: yes(env) if truth(cond(env)) else no(env))


def _fn_value(c: Compiler, args: list[Node]) -> Node:
    _arity(args, 1)
    point = c.point_arg(args[0])
    return Node(lambda env: env.value(point))


def _fn_age(c: Compiler, args: list[Node]) -> Node:
    _arity(args, 1)
    point = c.point_arg(args[0])
    c.uses_time = True
    return Node(lambda env: env.age(point))


def _timed(fn: Callable[[Env], Any]) -> Callable[[Compiler, list[Node]], Node]:
    def build(c: Compiler, args: list[Node]) -> Node:
        _arity(args, 0)
        c.uses_time = True
        return Node(fn)

    return build


def _fn_time_between(c: Compiler, args: list[Node]) -> Node:
    _arity(args, 2)
    try:
        start = parse_clock_time(c.const_string(args[0], "the start time"))
        end = parse_clock_time(c.const_string(args[1], "the end time"))
    except ValueError as exc:
        raise ExprSyntaxError(str(exc)) from None
    c.uses_time = True

    def run(env: Env) -> bool:
        hour = env.local_hour()
        return start <= hour < end if start <= end else hour >= start or hour < end

    return Node(run)


def _fn_sun_between(c: Compiler, args: list[Node]) -> Node:
    _arity(args, 2)
    try:
        start = parse_sun_spec(c.const_string(args[0], "the start event"))
        end = parse_sun_spec(c.const_string(args[1], "the end event"))
    except ValueError as exc:
        raise ExprSyntaxError(str(exc)) from None
    c.uses_time = c.uses_sun = True
    return Node(lambda env: env.sun_between(start, end))


def _fn_is_dark(c: Compiler, args: list[Node]) -> Node:
    _arity(args, 0)
    c.uses_time = c.uses_sun = True
    return Node(lambda env: env.sun_between(("sunset", 0.0), ("sunrise", 0.0)))


def _fn_sun_elevation(c: Compiler, args: list[Node]) -> Node:
    _arity(args, 0)
    c.uses_time = c.uses_sun = True
    return Node(lambda env: env.sun_elevation())


FUNCTIONS: dict[str, FunctionBuilder] = {
    "avg": _window_fn("avg"),
    "min": _window_fn("min"),
    "max": _window_fn("max"),
    "sum": _window_fn("sum"),
    "count": _window_fn("count"),
    "abs": _fn_abs,
    "round": _fn_round,
    "clamp": _fn_clamp,
    "if": _fn_if,
    "value": _fn_value,
    "age": _fn_age,
    "now": _timed(lambda env: env.now()),
    "hour": _timed(lambda env: env.local_hour()),
    "weekday": _timed(lambda env: env.weekday()),
    "time_between": _fn_time_between,
    "sun_between": _fn_sun_between,
    "is_dark": _fn_is_dark,
    "sun_elevation": _fn_sun_elevation,
}
