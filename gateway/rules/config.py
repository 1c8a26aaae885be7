"""The ``[rules]`` config section, parsed into typed objects.

Parsing ``[rules]`` also loads every rule file, so ``gateway check`` lists rule problems
(file, line, rule, field) next to config problems. Rule-file problems never stop the daemon,
so they are kept apart (``nonfatal_problems``) from the site config's own problems.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..components import SectionConfig
from ..config import SectionContext
from ..driver import PointSpec
from ..options import Table
from ..problems import Problem, Problems
from .accepted import AcceptedCopies
from .failsafe import DEFAULT_STALE_AFTER
from .ruleset import RuleDirectory


@dataclass(frozen=True)
class RulesConfig(SectionConfig):
    """The ``[rules]`` section: the rule directory, how often it is checked, the default
    ``stale_after``, and what loading the rule files found."""

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
        text = (
            f"{self.rule_count} rule{'s' if self.rule_count != 1 else ''} in {self.file_count} "
            f"file{'s' if self.file_count != 1 else ''} from {self.directory}"
        )
        for name, outcome in sorted(self.outcomes.items()):
            what = {
                "accepted_copy_runs": "its last accepted version runs",
                "skipped_failsafe": "skipped, it has no accepted version",
            }.get(outcome, outcome)
            text += f"\n    {name} is broken: {what}"
            held = sorted(p for p, f in self.held.items() if f == name)
            if outcome == "skipped_failsafe" and held:
                text += f"; the actuators it would write go to their fail-safe values: {', '.join(held)}"
        return text


def parse_rules_section(raw: Any, problems: Problems, ctx: SectionContext) -> RulesConfig:
    table = Table(raw, problems, "rules")
    directory_text = table.str("directory", "rules")
    reload_interval = table.duration("reload_interval", 2.0, min=0.2)
    stale_after = table.duration("stale_after", DEFAULT_STALE_AFTER, min=1)
    enabled = table.bool("enabled", True)
    table.finish()
    if "\0" in directory_text:  # resolve() would raise ValueError
        table.error("directory", "contains a NUL character; write the path of the rules directory")
        directory_text = "rules"
    directory = (ctx.config_dir / (directory_text or "rules")).resolve()
    config = RulesConfig(
        directory, reload_interval or 2.0, stale_after or DEFAULT_STALE_AFTER, bool(enabled), dict(ctx.points)
    )
    if not _is_dir(directory):
        table.error("directory", f"rules directory '{directory}' does not exist")
        return config
    rules_dir = RuleDirectory(
        directory,
        ctx.points,
        site_has_location=ctx.site.latitude is not None,
        accepted=AcceptedCopies(ctx.site.data_dir, readonly=True),
    )
    result = rules_dir.reload()
    outcomes = {Path(p).name: rules_dir.outcome(Path(p)) for p in result.rejected}
    copy_problems = [p for ps in rules_dir.copy_problems.values() for p in ps]
    return RulesConfig(
        config.directory,
        config.reload_interval,
        config.stale_after,
        config.enabled,
        config.points,
        len(rules_dir.rules),
        len(rules_dir.active),
        (*result.problems, *copy_problems),
        outcomes,
        rules_dir.unguarded_writes(),
    )


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name longer than the filesystem allows
        return False
