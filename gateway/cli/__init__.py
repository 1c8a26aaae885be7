"""The ``gateway`` command line: one sub-module per command group."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TypeGuard

from .. import __version__
from ..openssl_free import start_openssl_free

#: modules under gateway.cli that register sub-commands (each the command of its name); a
#: missing one is skipped. Driver families add their own (``Driver.commands``).
COMMAND_MODULES = ("run", "check", "status", "demo", "readings", "export", "rules", "override")


class _Parser(argparse.ArgumentParser):
    """argparse's parser (and every sub-command's: they take its class), with the help text's
    width found as shutil.get_terminal_size finds it. argparse's own formatter imports shutil
    for that (with zlib, bz2 and lzma: about 0.5 MB that `gateway run` would keep for its life)
    on every add_argument."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        return argparse.HelpFormatter(prog=self.prog, width=_terminal_columns() - 2)


def _terminal_columns() -> int:
    with contextlib.suppress(ValueError):
        if (columns := int(os.environ.get("COLUMNS", "0"))) > 0:
            return columns
    try:
        columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
    except (AttributeError, ValueError, OSError):
        columns = 0
    return columns or 80


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the ``argv`` to parse that names a command, only that
    command's module is imported (`gateway run` does not load the offline tools' code, nor
    any driver family's)."""
    parser = _Parser(prog="gateway", description="Smart-city edge gateway")
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((arg for arg in argv if not arg.startswith("-")), None) if argv is not None else None
    if named in COMMAND_MODULES and _register(sub, (named,)):
        return parser
    family_commands = _driver_commands()
    if named in family_commands:
        _register_target(sub, family_commands[named])
        return parser
    _register(sub, COMMAND_MODULES)
    for target in family_commands.values():
        _register_target(sub, target)
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


def _driver_commands() -> dict[str, str]:
    """Sub-commands the installed driver families offer: name -> ``module:function``."""
    from ..driver import loadable_drivers

    commands: dict[str, str] = {}
    for driver in loadable_drivers().values():
        for name, target in driver.commands.items():
            if name not in COMMAND_MODULES:  # a family cannot replace a core command
                commands.setdefault(name, target)
    return commands


#: a driver family's command: ``register(sub)`` adds it to the sub-parsers
Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], object]


def _is_register(value: object) -> TypeGuard[Register]:
    return callable(value)


def _register_target(sub: argparse._SubParsersAction, target: str) -> None:  # type: ignore[type-arg]
    from ..driver import load_target

    load_target(target, "a command's register function", _is_register)(sub)


def main(argv: list[str] | None = None) -> int:
    # First, before any command imports asyncio: the daemon keeps OpenSSL's libraries out.
    start_openssl_free()
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
