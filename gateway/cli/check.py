"""``gateway check``: validate the config (and everything it names) without starting."""

from __future__ import annotations

import argparse

from .common import add_config_arg, load_or_report


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("check", help="validate the config without starting; lists every problem")
    add_config_arg(parser)
    parser.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    points = sum(len(d.points) for d in config.devices)
    writable = sum(1 for d in config.devices for p in d.points if p.writable)
    print(f"{args.config}: OK - site '{config.site.id}', {len(config.devices)} devices, "
          f"{points} points ({writable} writable)")
    for name, section in config.sections.items():
        summary = getattr(section, "summary", None)
        if callable(summary):
            print(f"  {name}: {summary()}")
    return 0
