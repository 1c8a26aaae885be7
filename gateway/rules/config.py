"""The ``[rules]`` and ``[actuators."device/point"]`` config sections, parsed into typed objects.

Parsing ``[rules]`` also loads every rule file, so ``gateway check`` lists rule problems
(file, line, rule, field) next to config problems. Rule-file problems never stop the daemon,
so they are kept apart (``nonfatal_problems``) from the site config's own problems.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..driver import PointSpec
from ..options import Table
from ..problems import Problem, Problems, did_you_mean
from .accepted import AcceptedCopies
from .engine import DEFAULT_STALE_AFTER
from .model import ActuatorSettings
from .ruleset import RuleDirectory


@dataclass(frozen=True)
class RulesConfig:
    directory: Path
    reload_interval: float = 2.0
    stale_after: float = DEFAULT_STALE_AFTER
    enabled: bool = True
    points: Mapping[str, PointSpec] = field(default_factory=dict, repr=False)
    rule_count: int = 0
    file_count: int = 0
    #: problems in rule files: reported, but the daemon starts (see ``outcomes``)
    nonfatal_problems: tuple[Problem, ...] = ()
    #: rejected file name -> what the daemon runs instead (see RuleDirectory.outcome)
    outcomes: Mapping[str, str] = field(default_factory=dict)
    #: point -> rule file, for actuators a skipped file would write (held at their fail-safe)
    held: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        text = (f"{self.rule_count} rule{'s' if self.rule_count != 1 else ''} in {self.file_count} "
                f"file{'s' if self.file_count != 1 else ''} from {self.directory}")
        for name, outcome in sorted(self.outcomes.items()):
            what = {"accepted_copy_runs": "its last accepted version runs",
                    "skipped_failsafe": "skipped, it has no accepted version"}.get(outcome, outcome)
            text += f"\n    {name} is broken: {what}"
            held = sorted(p for p, f in self.held.items() if f == name)
            if outcome == "skipped_failsafe" and held:
                text += f"; the actuators it would write go to their fail-safe values: {', '.join(held)}"
        return text


@dataclass(frozen=True)
class ActuatorsConfig:
    points: Mapping[str, ActuatorSettings]

    def get(self, point: str) -> ActuatorSettings | None:
        return self.points.get(point)

    def summary(self) -> str:
        guarded = sum(1 for s in self.points.values() if s.fail_safe is not None)
        return f"{len(self.points)} actuators with safety settings, {guarded} with a fail-safe value"


def parse_rules_section(raw: Any, problems: Problems, ctx: Any) -> RulesConfig:
    table = Table(raw, problems, "rules")
    directory_text: str | None = table.str("directory", "rules")
    reload_interval = table.duration("reload_interval", 2.0, min=0.2)
    stale_after = table.duration("stale_after", DEFAULT_STALE_AFTER, min=1)
    enabled = table.bool("enabled", True)
    table.finish()
    if isinstance(directory_text, str) and "\0" in directory_text:  # resolve() would raise ValueError
        table.error("directory", "contains a NUL character; write the path of the rules directory")
        directory_text = None
    directory = (Path(ctx.config_dir) / (directory_text or "rules")).resolve()
    config = RulesConfig(directory, reload_interval or 2.0, stale_after or DEFAULT_STALE_AFTER,
                         bool(enabled), dict(ctx.points))
    if not _is_dir(directory):
        table.error("directory", f"rules directory '{directory}' does not exist")
        return config
    rules_dir = RuleDirectory(directory, ctx.points, site_has_location=ctx.site.latitude is not None,
                              accepted=AcceptedCopies(ctx.site.data_dir, readonly=True))
    result = rules_dir.reload()
    outcomes = {Path(p).name: rules_dir.outcome(Path(p)) for p in result.rejected}
    copy_problems = [p for ps in rules_dir.copy_problems.values() for p in ps]
    return RulesConfig(config.directory, config.reload_interval, config.stale_after, config.enabled,
                       config.points, len(rules_dir.rules), len(rules_dir.active),
                       (*result.problems, *copy_problems), outcomes, rules_dir.unguarded_writes())


def parse_actuators_section(raw: Any, problems: Problems, ctx: Any) -> ActuatorsConfig:
    root = Table(raw, problems, "actuators")
    points: dict[str, ActuatorSettings] = {}
    writable = [p for p, spec in ctx.points.items() if spec.writable]
    for name in list(root.raw):
        key = f'actuators."{name}"'
        table = Table(root.raw[name], problems, key)
        spec: PointSpec | None = ctx.points.get(name)
        fail_safe = table.number_or_str("fail_safe", None)
        low = table.float("min", None)
        high = table.float("max", None)
        max_rate = table.float("max_rate", None, min=0)
        min_interval = table.duration("min_interval", 0.0, min=0)
        stale_after = table.duration("stale_after", None, min=1)
        table.finish()
        if spec is None:
            problems.add(key, f"unknown point '{name}'{did_you_mean(name, writable)}")
            continue
        if not spec.writable:
            problems.add(key, f"'{name}' is not writable{did_you_mean(name, writable)}")
            continue
        numeric = (low, high, max_rate)
        if spec.kind != "number" and any(v is not None for v in numeric):
            problems.add(key, f"min, max and max_rate only apply to number points; '{name}' is {spec.kind}")
            continue
        if low is not None and high is not None and low > high:
            table.error("min", f"min ({low:g}) is above max ({high:g})")
            continue
        if fail_safe is not None:
            kinds = {"number": (int, float), "bool": (bool,), "string": (str,)}[spec.kind]
            if not isinstance(fail_safe, kinds) or (spec.kind == "number" and isinstance(fail_safe, bool)):
                table.error("fail_safe", f"{name} is a {spec.kind} point, got {fail_safe!r}")
                continue
            if spec.kind == "number" and isinstance(fail_safe, int | float) and (
                    (low is not None and fail_safe < low) or
                    (high is not None and fail_safe > high)):
                table.error("fail_safe", f"{fail_safe!r} is outside min..max ({_fmt(low)}..{_fmt(high)})")
                continue
        points[name] = ActuatorSettings(name, fail_safe, low, high, max_rate, min_interval or 0.0, stale_after)
    return ActuatorsConfig(points)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name longer than the filesystem allows
        return False
