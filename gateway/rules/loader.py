"""Reading rule files: TOML text -> validated ``Rule`` objects, or every problem in the file.

A file is all or nothing: one problem anywhere rejects the whole file, so a half-edited
file never runs. Problems name file, line, rule and field, with a did-you-mean.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..driver import PointSpec
from ..model import Value, is_valid_name_part, is_valid_point_name
from ..options import Table
from ..problems import KeyLocator, Problem, Problems, did_you_mean
from .expr import Expr, ExprSyntaxError, compile_expr
from .model import MODES, VIRTUAL_DEVICE, Action, Delay, PublishVirtual, RaiseEvent, Rule, SetPoint
from .triggers import PARSERS as TRIGGER_PARSERS
from .triggers import PointChanges, Trigger

#: a rule file larger than this is refused unread; real files are a few kilobytes
MAX_RULE_FILE_BYTES = 1_000_000
#: deepest nesting of TOML arrays and tables accepted ([[rule.action]] values are 4 deep);
#: tomllib recurses per level, so a bound keeps a hostile file from exhausting the stack
MAX_TOML_DEPTH = 16
ACTION_KINDS = ("set", "publish", "event", "delay")


@dataclass(frozen=True)
class RuleFile:
    """One rule file as read: its rules, its problems and the text kept as accepted copy."""

    path: Path
    rules: tuple[Rule, ...]
    problems: tuple[Problem, ...]
    signature: tuple[float, int] | None = None  # (mtime, size) when read
    text: str = field(default="", repr=False)  # what was read, kept as the last accepted version

    @property
    def ok(self) -> bool:
        return not self.problems


def virtual_points_in(raw: Any) -> set[str]:
    """Virtual points a raw rule file publishes (so other files may read them)."""
    found: set[str] = set()
    rules = raw.get("rule") if isinstance(raw, dict) else None
    for rule in rules if isinstance(rules, list) else []:
        actions = rule.get("action") if isinstance(rule, dict) else None
        for action in actions if isinstance(actions, list) else []:
            target = action.get("publish") if isinstance(action, dict) else None
            if isinstance(target, str) and target.startswith(f"{VIRTUAL_DEVICE}/"):
                found.add(target)
    return found


_SET_LINE = re.compile(r"""^\s*set\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def written_points_in(text: str) -> set[str]:
    """Points a rule file would write (its ``set`` actions), even when it does not parse.

    A broken file that never loaded controls nothing; these are the actuators that then go to
    their fail-safe values. Malformed TOML is scanned line by line, a best effort.
    """
    found: set[str] = set()
    try:
        raw: Any = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return set(_SET_LINE.findall(text))
    rules = raw.get("rule") if isinstance(raw, dict) else None
    for rule in rules if isinstance(rules, list) else []:
        actions = rule.get("action") if isinstance(rule, dict) else None
        for action in actions if isinstance(actions, list) else []:
            target = action.get("set") if isinstance(action, dict) else None
            if isinstance(target, str):
                found.add(target)
    return found


def read_raw(path: Path) -> tuple[dict[str, Any] | None, str, list[Problem]]:
    """The parsed TOML of a rule file, its text, and any problem reading it."""
    problems = Problems(str(path))
    try:
        size = path.stat().st_size
        if size > MAX_RULE_FILE_BYTES:
            problems.add(
                "",
                f"the file is {size} bytes, more than {MAX_RULE_FILE_BYTES}; "
                "split it into several rule files",
            )
            return None, "", problems.items
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add("", "file not found")
        return None, "", problems.items
    except (OSError, UnicodeDecodeError) as exc:
        problems.add("", f"cannot read the file: {exc}")
        return None, "", problems.items
    return parse_toml(text, problems)


def parse_toml(text: str, problems: Problems) -> tuple[dict[str, Any] | None, str, list[Problem]]:
    """The parsed TOML of rule-file text, refusing values nested deeper than MAX_TOML_DEPTH."""
    too_deep = f"values nested more than {MAX_TOML_DEPTH} levels deep (arrays or tables in arrays)"
    try:
        raw = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer past Python's 4300 digits
        problems.add("", f"malformed TOML: {exc}")
        return None, text, problems.items
    except RecursionError:
        problems.add("", too_deep)
        return None, text, problems.items
    if _depth(raw) > MAX_TOML_DEPTH:
        problems.add("", too_deep)
        return None, text, problems.items
    return raw, text, []


def _depth(value: Any, level: int = 0) -> int:
    """Nesting depth of parsed TOML, stopping early once past the bound (no deep recursion)."""
    if level > MAX_TOML_DEPTH or not isinstance(value, dict | list):
        return level
    children = value.values() if isinstance(value, dict) else value
    return max((_depth(child, level + 1) for child in children), default=level + 1)


def load_rule_file(
    path: Path,
    points: Mapping[str, PointSpec],
    *,
    virtual_points: Collection[str] = (),
    taken_names: Mapping[str, str] | None = None,
    site_has_location: bool = True,
) -> RuleFile:
    """Parse and validate one rule file.

    ``points`` are the site's declared points; ``virtual_points`` those published by any
    rule file; ``taken_names`` maps rule names already used by other files to their file.
    """
    try:
        stat = path.stat()
        signature: tuple[float, int] | None = (stat.st_mtime, stat.st_size)
    except OSError:
        signature = None
    raw, text, read_problems = read_raw(path)
    if raw is None:
        return RuleFile(path, (), tuple(read_problems), signature, text)
    return parse_rule_text(
        path,
        raw,
        text,
        points,
        virtual_points=virtual_points,
        taken_names=taken_names,
        site_has_location=site_has_location,
        signature=signature,
    )


def parse_rule_text(
    path: Path,
    raw: dict[str, Any],
    text: str,
    points: Mapping[str, PointSpec],
    *,
    virtual_points: Collection[str] = (),
    taken_names: Mapping[str, str] | None = None,
    site_has_location: bool = True,
    signature: tuple[float, int] | None = None,
) -> RuleFile:
    """Validate the parsed TOML ``raw`` (from ``text``) as the rule file at ``path``."""
    try:
        rules, problems = parse_rules(
            raw,
            text,
            str(path),
            points,
            virtual_points=virtual_points,
            taken_names=taken_names,
            site_has_location=site_has_location,
        )
    except Exception as exc:  # noqa: BLE001 - a rule file is never fatal, even one that finds a bug
        problem = Problem(str(path), "", f"cannot be loaded: {type(exc).__name__}: {exc}")
        return RuleFile(path, (), (problem,), signature, text)
    return RuleFile(path, tuple(rules), tuple(problems), signature, text)


def parse_rules(
    raw: dict[str, Any],
    text: str,
    filename: str,
    points: Mapping[str, PointSpec],
    *,
    virtual_points: Collection[str] = (),
    taken_names: Mapping[str, str] | None = None,
    site_has_location: bool = True,
) -> tuple[list[Rule], list[Problem]]:
    problems = Problems(filename, KeyLocator(text))
    readable = dict.fromkeys(points)
    readable.update(dict.fromkeys(virtual_points))
    readable.update(dict.fromkeys(virtual_points_in(raw)))
    root = Table(raw, problems)
    tables = root.tables("rule")
    root.finish()
    if not tables and not problems:
        problems.add("", "no rules in this file; each rule starts with a [[rule]] header")
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for index, table in enumerate(tables):
        before = len(problems.items)
        rule = _parse_rule(table, filename, points, readable, seen, taken_names or {})
        if rule is not None and not site_has_location and _uses_sun(rule):
            problems.add(
                table.prefix,
                "uses sun times, but the site has no location: set latitude and longitude in [gateway]",
            )
            rule = None
        name = table.raw.get("name") if isinstance(table.raw.get("name"), str) else f"#{index + 1}"
        for i in range(before, len(problems.items)):
            item = problems.items[i]
            problems.items[i] = dataclasses.replace(item, message=f"rule '{name}': {item.message}")
        if rule is not None and len(problems.items) == before:
            rules.append(rule)
    return rules, list(problems.items)


def _uses_sun(rule: Rule) -> bool:
    exprs = [
        *rule.conditions,
        *(a.expr for a in rule.actions if a.expr),
        *(t.expr for t in rule.triggers if t.expr),
    ]
    return any(t.uses_sun for t in rule.triggers) or any(e.uses_sun for e in exprs)


def _compile(table: Table, key: str, text: Any, readable: Mapping[str, Any]) -> Expr | None:
    if not isinstance(text, str):
        table.error(key, f"must be an expression in a string, got {text!r}")
        return None
    try:
        return compile_expr(text, readable)
    except ExprSyntaxError as exc:
        shown = text if len(text) <= 80 else text[:77] + "..."
        table.error(key, f"{exc} in {shown!r}")
        return None


def _fingerprint(raw: Any) -> str:
    blob = json.dumps(raw, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _parse_rule(
    table: Table,
    filename: str,
    points: Mapping[str, PointSpec],
    readable: Mapping[str, Any],
    seen: dict[str, str],
    taken: Mapping[str, str],
) -> Rule | None:
    problems_before = len(table.problems.items)
    name = table.str("name")
    if isinstance(name, str):
        if not is_valid_name_part(name):
            table.error("name", f"'{name}' may use letters, digits, '_', '-' and '.' only")
        elif name in seen:
            table.error("name", f"rule '{name}' is defined twice in this file")
        elif name in taken:
            table.error("name", f"rule '{name}' is already defined in {taken[name]}")
        seen[name] = filename
    description = table.str("description", "")
    mode = table.str("mode", "single", choices=MODES)
    cooldown = table.duration("cooldown", 0.0, min=0)
    hold_for = table.duration("for", 0.0, min=0)
    stale_after = table.duration("stale_after", None, min=1)
    enabled = table.bool("enabled", True)
    raw_conditions = table.raw.get("condition", [])
    table.seen.add("condition")
    conditions: list[Expr] = []
    if isinstance(raw_conditions, str):
        raw_conditions = [raw_conditions]
    if not isinstance(raw_conditions, list):
        table.error("condition", "must be an expression string or a list of them (all must hold)")
        raw_conditions = []
    for text in raw_conditions:
        expr = _compile(table, "condition", text, readable)
        if expr is not None:
            conditions.append(expr)
    parsed = [_parse_trigger(t, i, readable) for i, t in enumerate(table.tables("trigger"))]
    triggers = [t for t in parsed if t is not None]
    action_tables = table.tables("action")
    actions = [a for a in (_parse_action(t, points, readable) for t in action_tables) if a is not None]
    table.finish()
    if not action_tables:
        table.error("action", "a rule needs at least one [[rule.action]]")
    if not isinstance(name, str) or not enabled or len(table.problems.items) > problems_before:
        return None

    condition_points = frozenset().union(*(c.points for c in conditions)) if conditions else frozenset()
    action_points = frozenset().union(*(a.expr.points for a in actions if a.expr)) if actions else frozenset()
    trigger_points = frozenset(p for t in triggers for p in t.reads)
    if not triggers and not table.raw.get("trigger"):
        implicit = sorted(condition_points or action_points)
        if not implicit:
            table.error(
                "trigger",
                "this rule reads no point, so it needs a [[rule.trigger]] "
                '(for example cron = "0 22 * * *" or sun = "sunset+15m")',
            )
            return None
        triggers = [PointChanges(f"change of {p}", p) for p in implicit]
    windows: dict[str, float] = {}
    for expr in [*conditions, *(a.expr for a in actions if a.expr), *(t.expr for t in triggers if t.expr)]:
        for point, seconds in expr.windows.items():
            windows[point] = max(seconds, windows.get(point, 0.0))
    return Rule(
        name=name,
        file=filename,
        description=description or "",
        triggers=tuple(triggers),
        conditions=tuple(conditions),
        hold_for=hold_for or 0.0,
        mode=mode or "single",
        cooldown=cooldown or 0.0,
        stale_after=stale_after,
        actions=tuple(actions),
        fingerprint=_fingerprint(table.raw),
        inputs=condition_points | action_points | trigger_points,
        watches=condition_points,
        windows=windows,
    )


def _parse_trigger(table: Table, index: int, readable: Mapping[str, Any]) -> Trigger | None:
    kinds = [k for k in TRIGGER_PARSERS if k in table.raw]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        table.problems.add(
            table.prefix, f"a trigger needs exactly one of {', '.join(TRIGGER_PARSERS)} (found {found})"
        )
        table.seen.update(table.raw)
        return None
    return TRIGGER_PARSERS[kinds[0]](table, readable, _compile)


def _literal_fits(spec: PointSpec, value: Value) -> str | None:
    if spec.kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"is a number point, got {value!r}"
    if spec.kind == "bool" and not isinstance(value, bool):
        return f"is an on/off point, write true or false, got {value!r}"
    if spec.kind == "string" and not isinstance(value, str):
        return f"is a text point, write a quoted string, got {value!r}"
    return None


def _parse_action(
    table: Table, points: Mapping[str, PointSpec], readable: Mapping[str, Any]
) -> Action | None:
    kinds = [k for k in ACTION_KINDS if k in table.raw]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        table.problems.add(
            table.prefix, f"an action needs exactly one of {', '.join(ACTION_KINDS)} (found {found})"
        )
        table.seen.update(table.raw)
        return None
    kind = kinds[0]
    if kind == "delay":
        seconds = table.duration("delay", min=0)
        table.finish()
        return None if seconds is None else Delay(seconds)
    if kind == "event":
        name = table.str("event")
        message = table.str("message", "")
        expr_text = table.str("expr", None)
        table.finish()
        expr = _compile(table, "expr", expr_text, readable) if expr_text is not None else None
        if isinstance(name, str) and not is_valid_name_part(name):
            table.error("event", f"'{name}' may use letters, digits, '_', '-' and '.' only")
            return None
        if name is None or (expr_text is not None and expr is None):
            return None
        return RaiseEvent(f"events/{name}", message or "", expr)
    target = table.str(kind)
    value = table.number_or_str("value", None)
    expr_text = table.str("expr", None)
    unit = table.str("unit", None) if kind == "publish" else None
    table.finish()
    if (value is None) == (expr_text is None):
        table.error("value", 'give either value = <literal> or expr = "<expression>"')
        return None
    expr = _compile(table, "expr", expr_text, readable) if expr_text is not None else None
    if not isinstance(target, str) or (expr_text is not None and expr is None):
        return None
    if kind == "publish":
        if not (target.startswith(f"{VIRTUAL_DEVICE}/") and is_valid_point_name(target)):
            table.error(
                "publish",
                f"'{target}' must be named {VIRTUAL_DEVICE}/<name> so it is not mistaken for a device point",
            )
            return None
        return PublishVirtual(target, value, expr, unit)
    spec = points.get(target)
    if spec is None:
        table.error("set", f"unknown point '{target}'{did_you_mean(target, points)}")
        return None
    if not spec.writable:
        writable = [p for p, s in points.items() if s.writable]
        table.error("set", f"'{target}' is not writable{did_you_mean(target, writable)}")
        return None
    if value is not None and (problem := _literal_fits(spec, value)):
        table.error("value", f"{target} {problem}")
        return None
    return SetPoint(target, value, expr)
