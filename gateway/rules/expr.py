"""The rule expression language's syntax: a tokenizer and a Pratt parser that compile text to
closures; the functions it may call are ``functions.py``.

Nothing here calls eval, compile or ast: the text is parsed once at load into nested Python
closures that only read point values, windows and the clock through an ``Env``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..model import Value
from ..problems import did_you_mean


class ExprSyntaxError(Exception):
    """The text is not a valid expression; the message names the column and what was expected."""


class EvalError(Exception):
    """An expression could not be evaluated now (no value yet, wrong type, division by zero)."""


#: longest expression text accepted; real conditions are a line or two
MAX_EXPRESSION_LENGTH = 2000
#: deepest nesting of parentheses, calls and operators accepted. Each level is a Python frame
#: when the expression is parsed and evaluated, so without a bound a hostile or mistyped rule
#: could exhaust the stack (RecursionError) instead of getting a clear load error.
MAX_EXPRESSION_DEPTH = 50


class Env(Protocol):
    """What a compiled expression may ask for while evaluating."""

    def value(self, point: str) -> Value: ...
    def age(self, point: str) -> float: ...
    def window(self, point: str, seconds: float) -> list[float]: ...
    def now(self) -> float: ...
    def local_hour(self) -> float: ...
    def weekday(self) -> int: ...
    def sun_between(self, start: tuple[str, float], end: tuple[str, float]) -> bool: ...
    def sun_elevation(self) -> float: ...


Compiled = Callable[[Env], Any]


@dataclass(frozen=True)
class Expr:
    """A compiled expression plus what it reads, so the engine knows when to re-evaluate it."""

    source: str
    fn: Compiled = field(repr=False, compare=False)
    points: frozenset[str]
    windows: Mapping[str, float]  # point -> longest window in seconds
    uses_time: bool
    uses_sun: bool = False

    def __call__(self, env: Env) -> Any:
        try:
            return self.fn(env)
        except EvalError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. round(1e308 * 10): a rule error, never a crash
            raise EvalError(f"cannot evaluate: {type(exc).__name__}: {exc}") from exc


# -- tokens -----------------------------------------------------------------------------------

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:[.\-][A-Za-z0-9_]+)*"
_PART = r"[A-Za-z0-9_]+(?:[.\-][A-Za-z0-9_]+)*"
_TOKEN_RE = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<point>{_NAME}(?:/{_PART})+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|[-+*/%<>(),])
    """,
    re.VERBOSE,
)
KEYWORDS = {"and", "or", "not", "true", "false"}
#: characters of one number literal; longer ones are refused, not handed to int()
MAX_NUMBER_LENGTH = 400


@dataclass(frozen=True, slots=True)
class Token:
    """One token of a rule expression, with the column its errors point at."""

    kind: str  # number | string | point | name | op | end
    text: str
    column: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise ExprSyntaxError(f"unexpected character {text[pos]!r} at column {pos + 1}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos + 1))
        pos = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


# -- parser -----------------------------------------------------------------------------------

_BINARY_POWER = {
    "or": 1,
    "and": 2,
    "==": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}
_UNARY_MINUS_POWER = 7
_NOT_POWER = 3


@dataclass
class Node:
    """A parsed sub-expression: its closure and, when it is a literal, the constant value."""

    fn: Compiled
    const: Any = None
    is_const: bool = False
    is_string: bool = False
    depth: int = 1  # nesting of closures: the evaluation's stack depth


#: builds a function call's node from its argument nodes, at compile time (``functions.py``)
FunctionBuilder = Callable[["Compiler", list["Node"]], "Node"]


class Compiler:
    """Parses one expression; ``known_points`` are the points a rule may read."""

    def __init__(
        self,
        known_points: Mapping[str, Any] | frozenset[str] | set[str],
        functions: Mapping[str, FunctionBuilder],
    ):
        self.known = known_points
        self.functions = functions
        self.points: set[str] = set()
        self.windows: dict[str, float] = {}
        self.uses_time = False
        self.uses_sun = False
        self.tokens: list[Token] = []
        self.index = 0
        self.nesting = 0

    def compile(self, text: str) -> Expr:
        if not isinstance(text, str) or not text.strip():
            raise ExprSyntaxError("empty expression")
        if len(text) > MAX_EXPRESSION_LENGTH:
            raise ExprSyntaxError(
                f"expression is {len(text)} characters long, more than "
                f"{MAX_EXPRESSION_LENGTH}; split it into several rules or "
                "publish parts as virtual points"
            )
        self.tokens = tokenize(text)
        self.index = 0
        self.nesting = 0
        node = self._expression(0)
        token = self._peek()
        if token.kind != "end":
            raise ExprSyntaxError(f"unexpected {token.text!r} at column {token.column}")
        return Expr(text, node.fn, frozenset(self.points), dict(self.windows), self.uses_time, self.uses_sun)

    # token helpers
    def _peek(self) -> Token:
        return self.tokens[self.index]

    def _next(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _expect(self, text: str) -> None:
        token = self._next()
        if token.text != text:
            found = "the end" if token.kind == "end" else repr(token.text)
            raise ExprSyntaxError(f"expected {text!r} at column {token.column}, found {found}")

    def _too_deep(self, column: int) -> ExprSyntaxError:
        return ExprSyntaxError(
            f"expression nested more than {MAX_EXPRESSION_DEPTH} levels deep "
            f"at column {column}; split it into several rules or publish parts "
            "as virtual points"
        )

    def _expression(self, min_power: int) -> Node:
        self.nesting += 1
        try:
            if self.nesting > MAX_EXPRESSION_DEPTH:
                raise self._too_deep(self._peek().column)
            return self._expression_at(min_power)
        finally:
            self.nesting -= 1

    def _expression_at(self, min_power: int) -> Node:
        left = self._prefix()
        while True:
            token = self._peek()
            op = token.text if token.kind in ("op", "name") else ""
            power = _BINARY_POWER.get(op)
            if power is None or power <= min_power:
                if token.kind == "name" and token.text not in KEYWORDS | {"and", "or"}:
                    raise ExprSyntaxError(f"unexpected {token.text!r} at column {token.column}")
                return left
            self._next()
            right = self._expression(power if power != 4 else 4)
            if power == 4 and self._peek().text in ("==", "!=", "<", "<=", ">", ">="):
                raise ExprSyntaxError(
                    f"chained comparison at column {self._peek().column}; use 'and' between two comparisons"
                )
            left = _binary(op, left, right)
            if left.depth > MAX_EXPRESSION_DEPTH:
                raise self._too_deep(token.column)

    def _prefix(self) -> Node:
        token = self._next()
        if token.kind == "number":
            if len(token.text) > MAX_NUMBER_LENGTH:  # int() refuses 4300+ digits; no reading needs 40
                raise ExprSyntaxError(f"number at column {token.column} is too long")
            value = float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
            return _const(value)
        if token.kind == "string":
            return _const(_unquote(token.text))
        if token.kind == "point":
            return self._point(token.text, token.column)
        if token.kind == "op" and token.text == "(":
            node = self._expression(0)
            self._expect(")")
            return node
        if token.kind == "op" and token.text == "-":
            operand = self._expression(_UNARY_MINUS_POWER)
            return _unary_minus(operand)
        if token.kind == "op" and token.text == "+":
            return self._expression(_UNARY_MINUS_POWER)
        if token.kind == "name":
            if token.text == "true":
                return _const(True)
            if token.text == "false":
                return _const(False)
            if token.text == "not":
                operand = self._expression(_NOT_POWER)
                fn = operand.fn
                return Node(lambda env: not truth(fn(env)), depth=operand.depth + 1)
            if self._peek().text == "(":
                return self._call(token)
            raise ExprSyntaxError(
                f"unknown name '{token.text}' at column {token.column}; point names are written "
                f"device/point, functions need ( ){did_you_mean(token.text, self.functions)}"
            )
        found = "the end of the expression" if token.kind == "end" else repr(token.text)
        raise ExprSyntaxError(f"expected a value at column {token.column}, found {found}")

    def _point(self, name: str, column: int) -> Node:
        if name not in self.known:
            raise ExprSyntaxError(
                f"unknown point '{name}' at column {column}{did_you_mean(name, self.known)}"
            )
        self.points.add(name)
        return Node(lambda env: env.value(name))

    def _call(self, token: Token) -> Node:
        name = token.text
        self._expect("(")
        args: list[Node] = []
        if self._peek().text != ")":
            while True:
                args.append(self._expression(0))
                if self._peek().text == ",":
                    self._next()
                    continue
                break
        self._expect(")")
        builder = self.functions.get(name)
        if builder is None:
            raise ExprSyntaxError(
                f"unknown function '{name}' at column {token.column}{did_you_mean(name, self.functions)}"
            )
        try:
            node = builder(self, args)
        except ExprSyntaxError as exc:
            raise ExprSyntaxError(f"{name}() at column {token.column}: {exc}") from None
        node.depth = max(node.depth, 1 + max((a.depth for a in args), default=0))
        if node.depth > MAX_EXPRESSION_DEPTH:
            raise self._too_deep(token.column)
        return node

    # what function builders ask of the compiler: literal arguments, points read
    def const_string(self, node: Node, what: str) -> str:
        if not (node.is_const and isinstance(node.const, str)):
            raise ExprSyntaxError(f"{what} must be a quoted string")
        return node.const

    def point_arg(self, node: Node) -> str:
        name = self.const_string(node, "the point name")
        if name not in self.known:
            raise ExprSyntaxError(f"unknown point '{name}'{did_you_mean(name, self.known)}")
        self.points.add(name)
        return name


# -- evaluation helpers -----------------------------------------------------------------------


def _const(value: Any) -> Node:
    return Node(lambda env: value, value, True, isinstance(value, str))


def truth(value: Any) -> bool:
    """The value as a condition: numbers are true unless 0, text unless empty."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value != ""
    raise EvalError(f"cannot use {value!r} as true/false")


def as_number(value: Any, op: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EvalError(f"'{op}' needs numbers, got {value!r}")
    return value


def _arith(op: str) -> Callable[[Any, Any], Any]:
    def add(a: Any, b: Any) -> Any:
        if isinstance(a, str) and isinstance(b, str):
            return a + b
        return as_number(a, "+") + as_number(b, "+")

    def sub(a: Any, b: Any) -> Any:
        return as_number(a, "-") - as_number(b, "-")

    def mul(a: Any, b: Any) -> Any:
        return as_number(a, "*") * as_number(b, "*")

    def div(a: Any, b: Any) -> Any:
        divisor = as_number(b, "/")
        if divisor == 0:
            raise EvalError("division by zero")
        return as_number(a, "/") / divisor

    def mod(a: Any, b: Any) -> Any:
        divisor = as_number(b, "%")
        if divisor == 0:
            raise EvalError("modulo by zero")
        return as_number(a, "%") % divisor

    return {"+": add, "-": sub, "*": mul, "/": div, "%": mod}[op]


def _compare(op: str) -> Callable[[Any, Any], bool]:
    def check(a: Any, b: Any) -> None:
        a_num = isinstance(a, int | float) and not isinstance(a, bool)
        b_num = isinstance(b, int | float) and not isinstance(b, bool)
        if a_num != b_num or (not a_num and type(a) is not type(b)):
            raise EvalError(f"cannot compare {a!r} with {b!r}")

    def eq(a: Any, b: Any) -> bool:
        check(a, b)
        return bool(a == b)

    def ne(a: Any, b: Any) -> bool:
        check(a, b)
        return bool(a != b)

    def lt(a: Any, b: Any) -> bool:
        check(a, b)
        return bool(a < b)

    def le(a: Any, b: Any) -> bool:
        check(a, b)
        return bool(a <= b)

    def gt(a: Any, b: Any) -> bool:
        check(a, b)
        return bool(a > b)

    def ge(a: Any, b: Any) -> bool:
        check(a, b)
        return bool(a >= b)

    return {"==": eq, "!=": ne, "<": lt, "<=": le, ">": gt, ">=": ge}[op]


def _binary(op: str, left: Node, right: Node) -> Node:
    lf, rf = left.fn, right.fn
    depth = 1 + max(left.depth, right.depth)
    if op == "and":
        return Node(lambda env: truth(lf(env)) and truth(rf(env)), depth=depth)
    if op == "or":
        return Node(lambda env: truth(lf(env)) or truth(rf(env)), depth=depth)
    fn = _arith(op) if op in "+-*/%" else _compare(op)
    if left.is_const and right.is_const:
        try:
            value = fn(left.const, right.const)
        except EvalError as exc:
            raise ExprSyntaxError(str(exc)) from None
        except OverflowError:  # folding 1e308 * 10 ** 300 style constants
            raise ExprSyntaxError(f"'{op}' of two constants is out of range") from None
        return _const(value)
    return Node(lambda env: fn(lf(env), rf(env)), depth=depth)


def _unary_minus(operand: Node) -> Node:
    if operand.is_const:
        try:
            return _const(-as_number(operand.const, "-"))
        except EvalError as exc:
            raise ExprSyntaxError(str(exc)) from None
    fn = operand.fn
    return Node(lambda env: -as_number(fn(env), "-"), depth=operand.depth + 1)


# -- entry point ------------------------------------------------------------------------------


def compile_expr(text: str, known_points: Mapping[str, Any] | frozenset[str] | set[str]) -> Expr:
    """Parse ``text`` once; raises ExprSyntaxError naming the column and a did-you-mean."""
    from .functions import FUNCTIONS  # the library builds on this module's nodes

    return Compiler(known_points, FUNCTIONS).compile(text)
