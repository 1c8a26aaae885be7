"""The ``gateway`` command line: one sub-module per command group."""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

#: modules under gateway.cli that register sub-commands; a missing one is skipped.
COMMAND_MODULES = ("run", "check", "status", "demo", "readings", "export", "rules", "override", "codecs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Smart-city edge gateway")
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `gateway readings | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
