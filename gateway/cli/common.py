"""Helpers shared by CLI commands: loading the config and printing its problems."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import GatewayConfig, load_config
from ..problems import ConfigError

DEFAULT_CONFIG = Path(os.environ.get("GATEWAY_CONFIG", "/etc/gateway/gateway.toml"))


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", type=Path, default=DEFAULT_CONFIG,
                        help=f"site config file (default {DEFAULT_CONFIG}, or $GATEWAY_CONFIG)")


def load_or_report(path: Path, *, check_data_dir: bool = True) -> GatewayConfig | None:
    try:
        return load_config(path, check_data_dir=check_data_dir)
    except ConfigError as exc:
        print_problems(exc)
        return None


def print_problems(exc: ConfigError) -> None:
    count = len(exc.problems)
    print(f"{count} problem{'s' if count != 1 else ''} found:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
