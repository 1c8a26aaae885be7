"""``gateway readings``: query the buffer, also while the daemon is running."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import time
from pathlib import Path

from ..model import StoredReading
from ..store.database import Database
from ..store.store import DB_FILENAME
from ..units import parse_duration
from .common import add_config_arg, load_or_report


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("readings", help="show buffered readings: latest per point, or one point over time")
    add_config_arg(parser)
    parser.add_argument("--data-dir", type=Path, help="read this data directory instead of the config's")
    parser.add_argument("point", nargs="*", help="device/point names; none = every point")
    parser.add_argument("--since", help="start of a time range: a duration back from now (2h) or an ISO time")
    parser.add_argument("--until", help="end of the range (ISO time or duration back from now); default now")
    parser.add_argument("--limit", type=int, default=100_000)
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON lines")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    parser.set_defaults(func=command)


def parse_when(text: str, now: float) -> float:
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def command(args: argparse.Namespace) -> int:
    data_dir = args.data_dir
    if data_dir is None:
        config = load_or_report(args.config, check_data_dir=False)
        if config is None:
            return 2
        data_dir = config.site.data_dir
    path = data_dir / DB_FILENAME
    if not path.exists():
        print(f"no buffer at {path} yet (has the gateway run with this data_dir?)", file=sys.stderr)
        return 1
    db = Database(path, readonly=True)
    now = time.time()
    try:
        if args.since or args.until:
            start = parse_when(args.since, now) if args.since else 0.0
            end = parse_when(args.until, now) if args.until else now + 86400
            points = args.point or db.point_names()
            rows = [r for p in points for r in db.history(p, start, end, args.limit)]
            rows.sort(key=lambda r: (r.ts, r.seq))
        else:
            rows = db.latest(args.point or None)
    except ValueError as exc:
        print(f"bad time: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    unknown = [p for p in args.point if p not in {r.point for r in rows}]
    write_rows(rows[: args.limit], "json" if args.json else "csv" if args.csv else "table")
    if unknown and not rows:
        print(f"no readings for {', '.join(unknown)}", file=sys.stderr)
        return 1
    return 0


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_rows(rows: list[StoredReading], fmt: str) -> None:
    out = sys.stdout
    if fmt == "json":
        for r in rows:
            out.write(json.dumps({"seq": r.seq, "point": r.point, "ts": iso(r.ts), "value": r.value,
                                  "unit": r.unit, "quality": r.quality.name.lower(),
                                  "clock_synced": r.clock_synced}) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(["seq", "point", "ts", "value", "unit", "quality", "clock_synced"])
        for r in rows:
            writer.writerow([r.seq, r.point, iso(r.ts), r.value, r.unit or "", r.quality.name.lower(),
                             str(r.clock_synced).lower()])
    else:
        width = max((len(r.point) for r in rows), default=10)
        for r in rows:
            unit = f" {r.unit}" if r.unit else ""
            flag = "" if r.clock_synced else "  (clock not synced)"
            quality = "" if r.quality.name == "GOOD" else f"  [{r.quality.name.lower()}]"
            out.write(f"{iso(r.ts)}  {r.point:<{width}}  {r.value}{unit}{quality}{flag}\n")
