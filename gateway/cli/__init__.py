"""The ``gateway`` command line: one sub-module per command group."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__

#: modules under gateway.cli that register sub-commands (each the command of its name); a
#: missing one is skipped.
COMMAND_MODULES = ("run", "check", "status", "demo", "readings", "export", "rules", "override", "codecs")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the ``argv`` to parse that names a command, only that
    command's module is imported (`gateway run` does not load the offline tools' code)."""
    parser = argparse.ArgumentParser(prog="gateway", description="Smart-city edge gateway")
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((arg for arg in argv if not arg.startswith("-")), None) if argv is not None else None
    if named not in COMMAND_MODULES or not _register(sub, (named,)):
        _register(sub, COMMAND_MODULES)
    return parser


def _register(sub: argparse._SubParsersAction, names: Sequence[str | None]) -> int:  # type: ignore[type-arg]
    registered = 0
    for name in names:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
        registered += 1
    return registered


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `gateway readings | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
