"""``gateway rules test FILE``: validate a rule file and replay buffered history through it.

Nothing is written to any actuator: the engine runs on the recorded readings only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import assert_never

from ..config import GatewayConfig
from ..model import Reading
from ..rules.config import RulesConfig
from ..rules.engine import Engine
from ..rules.failsafe import DEFAULT_STALE_AFTER
from ..rules.loader import load_rule_file
from ..rules.model import Delay, PublishVirtual, RaiseEvent, Rule, SetPoint
from ..rules.replay import format_command, replay
from ..rules.ruleset import RuleDirectory
from ..rules.timeofday import SiteTimes
from ..store.database import Database
from ..store.store import DB_FILENAME
from ..units import format_duration, parse_duration
from .common import add_config_arg, load_or_report


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("rules", help="work with rule files (validate, dry-run against history)")
    actions = parser.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    test = actions.add_parser(
        "test",
        help="validate a rule file; with --replay, show what it would "
        "have done over the buffered history (writes nothing)",
    )
    test.add_argument("file", type=Path, help="rule file (TOML)")
    test.add_argument(
        "--replay", metavar="DURATION", help="replay the last DURATION of buffered readings, e.g. 2h or 1d"
    )
    test.add_argument("--data-dir", type=Path, help="read this data directory instead of the config's")
    add_config_arg(test)
    test.set_defaults(func=command_test)


def describe(rule: Rule) -> str:
    parts = [", ".join(t.label for t in rule.triggers)]
    if rule.conditions:
        parts.append("if " + " and ".join(c.source for c in rule.conditions))
    if rule.hold_for:
        parts.append(f"for {format_duration(rule.hold_for)}")
    steps = []
    for a in rule.actions:
        match a:
            case SetPoint() | PublishVirtual():
                what = a.expr.source if a.expr is not None else repr(a.value)
                steps.append(f"{a.verb} {a.target} = {what}")
            case RaiseEvent():
                steps.append(f"event {a.target}")
            case Delay():
                steps.append(f"wait {format_duration(a.seconds)}")
            case _:
                assert_never(a)
    parts.append("-> " + "; ".join(steps))
    return " ".join(parts)


def command_test(args: argparse.Namespace) -> int:
    config = load_or_report(args.config, check_data_dir=False)
    if config is None:
        return 2
    points = config.points
    rules_section = config.section("rules", RulesConfig)
    virtual: set[str] = set()
    if rules_section is not None:
        directory = RuleDirectory(
            rules_section.directory, points, site_has_location=config.site.latitude is not None
        )
        directory.reload()
        virtual = {v for r in directory.rules if r.file != str(args.file.resolve()) for v in r.publishes}
    result = load_rule_file(
        args.file.resolve(),
        points,
        virtual_points=virtual,
        site_has_location=config.site.latitude is not None,
    )
    if not result.ok:
        count = len(result.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found:", file=sys.stderr)
        for problem in result.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{args.file}: OK - {len(result.rules)} rule{'s' if len(result.rules) != 1 else ''}")
    for rule in result.rules:
        print(f"  {rule.name}: {describe(rule)}")
    if not args.replay:
        return 0
    try:
        span = parse_duration(args.replay)
    except ValueError as exc:
        print(f"--replay: {exc}", file=sys.stderr)
        return 2
    data_dir = args.data_dir or config.site.data_dir
    path = data_dir / DB_FILENAME
    if not path.exists():
        print(f"no buffer at {path} yet (has the gateway run with this data_dir?)", file=sys.stderr)
        return 1
    now = time.time()
    # what the file publishes itself is replayed, not read back from the live rules' records
    wanted = make_engine(config, result.rules, now).points - {p for r in result.rules for p in r.publishes}
    longest_window = max((s for r in result.rules for s in r.windows.values()), default=0.0)
    db = Database(path, readonly=True)
    try:
        # nothing is known before the buffer's first reading: the replay starts there at the
        # earliest, and an input that never reported has been silent since then, not longer
        oldest = db.oldest_ts()
        buffer_start = now if oldest is None else oldest
        start = min(max(now - span, buffer_start), now)
        known = db.latest_before(wanted, start)  # the latest values a restart would prime
        history = db.history_all(start - longest_window, now)
    finally:
        db.close()
    engine = make_engine(config, result.rules, start, started_at=min(buffer_start, start))
    readings = [Reading(r.point, r.value, r.ts, r.unit) for r in history if r.point in wanted]
    engine.prime(
        [*(Reading(r.point, r.value, r.ts, r.unit) for r in known), *(r for r in readings if r.ts < start)]
    )
    outcome = replay(engine, (r for r in readings if r.ts >= start), end=now)
    since = (
        f"the last {format_duration(span)}"
        if start <= now - span
        else f"{format_command_time(start)} (the first reading in the buffer), "
        f"{format_duration(round(now - start))} of the {format_duration(span)} asked for"
    )
    print(
        f"replayed {outcome.readings} readings from {since}; "
        f"{len(outcome.commands)} action{'s' if len(outcome.commands) != 1 else ''} would have fired "
        "(nothing was written):"
    )
    for cmd in outcome.commands:
        print(f"  {format_command(cmd)}")
    return 0


def make_engine(
    config: GatewayConfig, rules: Iterable[Rule], now: float, *, started_at: float | None = None
) -> Engine:
    """An engine for ``rules`` as the daemon would build it, its clock at ``now``."""
    site = config.site
    section = config.section("rules", RulesConfig)
    engine = Engine(
        SiteTimes(site.timezone, site.latitude, site.longitude),
        config.actuators.points,
        now=now,
        default_stale_after=section.stale_after if section is not None else DEFAULT_STALE_AFTER,
    )
    if started_at is not None:
        engine.started_at = started_at
    engine.load(rules)
    return engine


def format_command_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
