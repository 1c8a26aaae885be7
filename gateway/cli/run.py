"""``gateway run``: the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging

from ..logfmt import setup_logging
from ..service import Service
from .common import add_config_arg, load_or_report

log = logging.getLogger("gateway")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("run", help="run the gateway daemon")
    add_config_arg(parser)
    parser.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    setup_logging(config.site.log_level)
    asyncio.run(Service(config).run())
    return 0
