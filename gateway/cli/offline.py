"""What the offline commands (``readings``, ``export``) share: finding the buffer beside a
running daemon, the site's time zone and the points the config names."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from ..config import GatewayConfig, load_config
from ..problems import ConfigError
from ..store.store import DB_FILENAME
from .common import add_config_arg, load_or_report
from .timefmt import TimeFormat


def add_buffer_args(parser: argparse.ArgumentParser) -> None:
    add_config_arg(parser)
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="read this data directory instead of the config's (times are then in the "
        "config's time zone if it can be read, else this machine's)",
    )
    parser.add_argument(
        "--utc", action="store_true", help="show times in UTC instead of the site's time zone"
    )


@dataclass(frozen=True, slots=True)
class BufferSite:
    """The buffer an offline command reads, how to show its times, and the points configured."""

    path: Path
    times: TimeFormat
    configured_points: tuple[str, ...]


def locate(args: argparse.Namespace) -> BufferSite | int:
    """The buffer to read and how to show its times, or an exit status after saying what is
    wrong: 2 the config is broken, 1 there is no buffer yet."""
    config: GatewayConfig | None
    if args.data_dir is None:
        config = load_or_report(args.config, check_data_dir=False)
        if config is None:
            return 2
        data_dir = config.site.data_dir
    else:
        data_dir = args.data_dir
        try:  # only for the time zone and point names: a missing or broken config is no error here
            config = load_config(args.config, check_data_dir=False)
        except (ConfigError, OSError):
            config = None
    path = data_dir / DB_FILENAME
    if not path.exists():
        print(f"no buffer at {path} yet (has the gateway run with this data_dir?)", file=sys.stderr)
        return 1
    times = TimeFormat.for_site(config.site.timezone if config else None, utc=args.utc)
    return BufferSite(path, times, tuple(config.points) if config else ())
