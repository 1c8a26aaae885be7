"""Helpers shared by CLI commands: loading the config and printing its problems."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import GatewayConfig, load_config
from ..problems import ConfigError, Problem

DEFAULT_CONFIG = Path(os.environ.get("GATEWAY_CONFIG", "/etc/gateway/gateway.toml"))

#: ``gateway check`` exit statuses, agreed with the systemd unit and the boot-config importer:
#: only rule files have problems (the daemon starts anyway) ...
EXIT_RULE_PROBLEMS = 1
#: ... or the site config has problems (the daemon will not start; ``gateway run`` exits 2 too)
EXIT_SITE_CONFIG = 2


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"site config file (default {DEFAULT_CONFIG}, or $GATEWAY_CONFIG)",
    )


def load_or_report(path: Path, *, check_data_dir: bool = True) -> GatewayConfig | None:
    """The site config, or None after printing its problems. Problems in rule files do not
    count: every command works while a rule file is broken."""
    try:
        return load_config(path, check_data_dir=check_data_dir)
    except ConfigError as exc:
        print_problems(exc)
        return None


def print_problems(exc: ConfigError) -> None:
    print_problem_list(exc.problems)
    if exc.nonfatal:
        print_problem_list(exc.nonfatal, "in rule files")


def print_problem_list(problems: Sequence[Problem], where: str = "", noun: str = "problem") -> None:
    count = len(problems)
    print(f"{count} {noun}{'s' if count != 1 else ''} found{' ' + where if where else ''}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
