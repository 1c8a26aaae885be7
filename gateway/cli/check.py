"""``gateway check``: validate the config (and everything it names) without starting.

Exit status: 0 everything valid; 1 only rule-file problems (the daemon starts: each broken
rule file runs its last accepted version, or is skipped and its actuators go to their
fail-safe values); 2 site-config problems (the daemon will not start). Warnings (a serial
port not plugged in right now) are printed and never change the exit status.
"""

from __future__ import annotations

import argparse

from ..config import load_config
from ..problems import ConfigError
from .common import EXIT_RULE_PROBLEMS, EXIT_SITE_CONFIG, add_config_arg, print_problem_list, print_problems


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "check",
        help="validate the config without starting; lists every problem",
        description="Exit status: 0 valid; 1 only rule-file problems (the gateway starts); "
        "2 site-config problems (the gateway will not start). Warnings, such as a "
        "serial port that is not plugged in, do not change it.",
    )
    add_config_arg(parser)
    parser.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print_problems(exc)
        return EXIT_SITE_CONFIG
    points = sum(len(d.points) for d in config.devices)
    writable = sum(1 for d in config.devices for p in d.points if p.writable)
    rule_problems = config.nonfatal_problems
    verdict = "OK" if not rule_problems else "site config OK, rule files have problems"
    print(
        f"{args.config}: {verdict} - site '{config.site.id}', {len(config.devices)} devices, "
        f"{points} points ({writable} writable)"
    )
    if config.actuators.points:
        print(f"  actuators: {config.actuators.summary()}")
    for name, section in config.sections.items():
        summary = section.summary()
        if summary is not None:
            print(f"  {name}: {summary}")
    if config.warnings:
        print_problem_list(config.warnings, "(the gateway still starts)", noun="warning")
    if rule_problems:
        print_problem_list(rule_problems, "in rule files (the gateway still starts)")
        return EXIT_RULE_PROBLEMS
    return 0
