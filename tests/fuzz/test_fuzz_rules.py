"""Hostile rule files and expressions, as a technician's editor may leave them: every text is
rules or problems naming file and line (rule files), or an ExprSyntaxError (expressions)."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gateway.config import parse_config_text
from gateway.problems import Problems
from gateway.rules.expr import EvalError, ExprSyntaxError, compile_expr
from gateway.rules.loader import parse_rules, parse_toml

from .mutate import FUZZ, HOSTILE_TEXT, text_case
from .test_fuzz_config import DEMO, _demo_text

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "gateway" / "demo" / "rules").glob("*.toml")) + sorted(
    (ROOT / "tests" / "cases" / "rules").glob("*/rules.toml")
)
RULE_SEEDS = [path.read_text(encoding="utf-8") for path in RULE_FILES]
POINTS = parse_config_text(_demo_text(), DEMO, check_data_dir=False).points
#: points the test-case rule files read, so their expressions compile as far as the demo's do
for _seed in RULE_SEEDS:
    for _name in re.findall(r"""['"]([a-z][\w.-]*/[\w.-]+)['"]""", _seed):
        POINTS.setdefault(_name, POINTS["lamp-1/level"])
RULE_HOSTILE = HOSTILE_TEXT + (
    "[[rule]]\n",
    "[[rule.trigger]]\n",
    "[[rule.action]]\n",
    "condition = ",
    "expr = ",
    'cron = "',
    'sun = "',
    "every = ",
    "for = ",
    "cooldown = ",
    "mode = ",
    "above = ",
    "value = ",
    "1e308",
    "sunset+",
    "lamp-1/level",
    "avg(",
    "'10m'",
    "9" * 400 + "d",
)


def check_rule_file(text: str) -> None:
    """What the loader does with a rule file's text (``load_rule_file`` minus the disk read)."""
    raw, _, read_problems = parse_toml(text, Problems("rules/fuzz.toml"))
    if raw is None:
        assert read_problems  # malformed TOML or nested too deeply, reported as a problem
        return
    rules, problems = parse_rules(raw, text, "rules/fuzz.toml", POINTS)
    for problem in problems:
        assert problem.file == "rules/fuzz.toml" and problem.message


def _expressions() -> list[str]:
    found = []
    for seed in RULE_SEEDS:
        found += re.findall(r'^(?:condition|expr|when) = "(.*)"$', seed, flags=re.M)
    return found + [
        "lamp-1/level > 3 and not (carpark/free < 2 or hour() >= 22)",
        "-(-1.5e3) % 7 != 0",
        "if(is_dark(), 100, clamp(round(avg('lamp-1/traffic', '5m') * 7, 1), 30, 100))",
        "time_between('22:00', '06:30') or sun_between('sunset-1h', 'dawn+15m')",
        "min(1, 2, 3) + max('lamp-1/level', '10m') + count('lamp-1/level', '1h')",
        "value('lamp-1/level') == 'on' + \"\\\"x\\\"\"",
        "age('lamp-1/level') > 120 and weekday() < 5",
    ]


EXPRESSIONS = _expressions()
#: the points the expressions name: did-you-mean over the demo's 111 points would take most of the time
EXPR_POINTS = {name: spec for name, spec in POINTS.items() if any(name in e for e in EXPRESSIONS)}
EXPR_HOSTILE = HOSTILE_TEXT + (
    "(" * 60,
    "-" * 60,
    "not " * 60,
    "(",
    ")",
    "-",
    "not ",
    " and ",
    " or ",
    "==",
    "<=",
    "*",
    "/",
    "%",
    ",",
    "'",
    '"',
    "avg(",
    "round(",
    "if(",
    "1e308",
    "lamp-1/level",
    "'5m'",
    "'25:00'",
    "'sunset+'",
)


class _Env:
    """Readings for evaluating what compiled: numbers of every size, text, nothing at all."""

    def __init__(self, value: object) -> None:
        self.reading = value

    def value(self, point: str) -> object:
        return self.reading

    def window(self, point: str, seconds: float) -> list[float]:
        return [1.0, 2.5] if isinstance(self.reading, int | float) else []

    def age(self, point: str) -> float:
        return 30.0

    def now(self) -> float:
        return 1_764_633_600.0

    def local_hour(self) -> float:
        return 22.5

    def weekday(self) -> int:
        return 2

    def sun_between(self, start: object, end: object) -> bool:
        return True

    def sun_elevation(self) -> float:
        return -3.0


ENVS = [_Env(v) for v in (0, 86.1, -1, 10**18, 1e308, float("inf"), float("nan"), True, "on", "")]


def check_expression(text: str) -> None:
    try:
        expr = compile_expr(text, EXPR_POINTS)
    except ExprSyntaxError:
        return
    # The evaluator sees device readings, hostile too: it answers or raises EvalError.
    for env in ENVS:
        try:
            expr(env)  # type: ignore[arg-type]
        except EvalError:
            pass


@FUZZ
@given(st.integers(0, 2**64 - 1))
def test_fuzz_rule_files_and_expressions(n: int) -> None:
    """Each example is one mutated rule file and one mutated expression."""
    check_rule_file(text_case(n, RULE_SEEDS, RULE_HOSTILE))
    check_expression(text_case(n + 1, EXPRESSIONS, EXPR_HOSTILE))
