"""``gateway override``: hold a writable point at a value for a while, clear it, or list holds.

The override is written durably into the buffer's state table; the running daemon picks it
up at its next periodic check (the rules ``reload_interval``, 2 s by default) and applies it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..config import GatewayConfig
from ..driver import PointSpec
from ..model import Value
from ..overrides import NAMESPACE, Override
from ..problems import did_you_mean
from ..store.database import Database
from ..store.store import DB_FILENAME
from ..units import format_duration, parse_duration
from .common import add_config_arg, load_or_report

TRUE_WORDS = ("true", "on", "1", "yes")
FALSE_WORDS = ("false", "off", "0", "no")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "override",
        help="hold a writable point at a value (rules step back), clear it, or list holds",
        description="gateway override POINT VALUE --for DURATION | gateway override --clear POINT | "
        "gateway override (lists active overrides)",
    )
    parser.add_argument("point", nargs="?", help="device/point, e.g. lamp-1/level")
    parser.add_argument("value", nargs="?", help="the value to hold, e.g. 80, on, FULL")
    parser.add_argument("--for", dest="duration", help="how long the override holds, e.g. 30m or 2h")
    parser.add_argument("--clear", metavar="POINT", help="end the override of POINT now")
    parser.add_argument("--data-dir", type=Path, help="use this data directory instead of the config's")
    add_config_arg(parser)
    parser.set_defaults(func=command)


def parse_value(spec: PointSpec, text: str) -> Value:
    """The typed value for ``spec`` from command-line text; raises ValueError."""
    if spec.kind == "bool":
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"'{text}' is not on/off; write one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")
    if spec.kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a number") from None
        return int(number) if number.is_integer() and "." not in text else number
    return text


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def command(args: argparse.Namespace) -> int:
    config = load_or_report(args.config, check_data_dir=False)
    if config is None:
        return 2
    path = (args.data_dir or config.site.data_dir) / DB_FILENAME
    if args.clear:
        return _clear(config, path, args.clear)
    if args.point is None:
        return _list(path)
    if args.value is None or args.duration is None:
        print("usage: gateway override POINT VALUE --for DURATION (or --clear POINT)", file=sys.stderr)
        return 2
    return _set(config, path, args.point, args.value, args.duration)


def _check_point(config: GatewayConfig, point: str) -> PointSpec | None:
    points = config.points
    writable = [p for p, s in points.items() if s.writable]
    spec = points.get(point)
    if spec is None or not spec.writable:
        what = "unknown point" if spec is None else "not a writable point:"
        print(
            f"{what} '{point}'{did_you_mean(point, writable)}; writable points: "
            f"{', '.join(sorted(writable)) or 'none'}",
            file=sys.stderr,
        )
        return None
    return spec


def _set(config: GatewayConfig, path: Path, point: str, text: str, duration_text: str) -> int:
    spec = _check_point(config, point)
    if spec is None:
        return 2
    try:
        value = parse_value(spec, text)
        duration = parse_duration(duration_text)
    except ValueError as exc:
        print(f"{point}: {exc}", file=sys.stderr)
        return 2
    if duration <= 0:
        print("--for must be longer than 0s", file=sys.stderr)
        return 2
    settings = config.actuators.get(point)
    if settings is not None and isinstance(value, int | float) and not isinstance(value, bool):
        if (settings.min is not None and value < settings.min) or (
            settings.max is not None and value > settings.max
        ):
            print(
                f"{point}: {value} is outside the allowed range {settings.min:g}..{settings.max:g}"
                if settings.min is not None and settings.max is not None
                else f"{point}: {value} is outside the allowed range",
                file=sys.stderr,
            )
            return 2
    now = time.time()
    override = Override(point, value, now + duration, f"cli:{_user()}", now)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(path)
    try:
        db.put_state(NAMESPACE, {point: asdict(override)}, now)
    finally:
        db.close()
    print(
        f"{point} held at {value!r} for {format_duration(duration)} (until {_iso(override.until)}); "
        "the running gateway applies it within its rules reload interval and rules leave it alone"
    )
    return 0


def _clear(config: GatewayConfig, path: Path, point: str) -> int:
    if not path.exists():
        print(f"no buffer at {path}: nothing to clear", file=sys.stderr)
        return 1
    db = Database(path)
    try:
        existed = db.get_state(NAMESPACE, point) is not None
        db.put_state(NAMESPACE, {point: None}, time.time())
    finally:
        db.close()
    if not existed:
        print(f"{point}: no override to clear", file=sys.stderr)
        return 1
    print(f"{point}: override cleared; rules take over again")
    return 0


def _list(path: Path) -> int:
    if not path.exists():
        print("no overrides (no buffer yet)")
        return 0
    db = Database(path, readonly=True)
    try:
        items = db.all_state(NAMESPACE)
    finally:
        db.close()
    now = time.time()
    active = [Override(**v) for v in items.values() if v and v.get("until", 0) > now]
    if not active:
        print("no active overrides")
        return 0
    for o in sorted(active, key=lambda o: o.point):
        print(
            f"{o.point:<28} {o.value!r:<10} until {_iso(o.until)} ({format_duration(round(o.until - now))} "
            f"left)  set by {o.source}"
        )
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
