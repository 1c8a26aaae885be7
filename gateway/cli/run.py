"""``gateway run``: the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from ..logfmt import setup_logging
from ..service import Service
from ..stopguard import exit_if_stop_hangs
from .common import add_config_arg, load_or_report

log = logging.getLogger("gateway")

#: exit status after a shutdown that abandoned an unresponsive store writer (systemd restarts)
EXIT_STORE_ABANDONED = 3


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("run", help="run the gateway daemon")
    add_config_arg(parser)
    parser.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    setup_logging(config.site.log_level)
    for warning in config.warnings:
        log.warning("event=config_warning key=%s problem=%r", warning.key, str(warning))
    service = Service(config)
    service.on_stop.append(exit_if_stop_hangs)
    asyncio.run(service.run())
    if not service.clean_exit:
        # The store's writer thread is stuck in the kernel (a hung card); a normal exit would
        # join it forever. Committed readings are safe on disk; say so and leave now.
        logging.shutdown()
        os._exit(EXIT_STORE_ABANDONED)
    return 0
