"""``gateway readings``: query the buffer, also while the daemon is running, or follow it live."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from ..model import StoredReading
from ..store.database import Database
from .offline import add_buffer_args, locate
from .pointsel import PointSelection
from .rowformat import RowWriter, writer_for
from .timefmt import TimeFormat

#: how often ``--follow`` looks for new readings. Another process gets no signal when the
#: daemon commits (SQLite has none across processes), so it polls the buffer's last sequence
#: number: one indexed read, cheap beside a daemon that commits every few hundred ms.
FOLLOW_POLL_INTERVAL = 0.5
#: readings read in one go while catching up, so a burst never sits in memory whole
FOLLOW_BATCH = 2000


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "readings", help="show buffered readings: latest per point, a time range, or --follow new ones live"
    )
    add_buffer_args(parser)
    parser.add_argument(
        "point",
        nargs="*",
        help="device/point names or globs (quote them: 'lamp-*/level'); none = every point",
    )
    parser.add_argument(
        "--since",
        help="start of a time range: a duration back from now (2h) or an ISO "
        "time; without an offset it is in the site's time zone",
    )
    parser.add_argument("--until", help="end of the range (ISO time or duration back from now); default now")
    parser.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="print the latest reading of each point, then every new one as the daemon "
        "commits it, until Ctrl-C",
    )
    parser.add_argument("--limit", type=int, default=100_000)
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON lines")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    parser.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    if args.follow and (args.since or args.until):
        print(
            "--follow starts from the latest readings; use --since/--until without --follow for a time range",
            file=sys.stderr,
        )
        return 2
    site = locate(args)
    if isinstance(site, int):
        return site
    selection = PointSelection(tuple(args.point))
    fmt = "ndjson" if args.json else "csv" if args.csv else "table"
    db = Database(site.path, readonly=True)
    try:
        names = db.point_names()
        problems = selection.problems(names, site.configured_points)
        for problem in problems:
            print(problem.message, file=sys.stderr)
        selected = selection.select(names)
        width = max((len(n) for n in selected), default=10)
        writer = writer_for(fmt, sys.stdout, site.times, width)
        if args.follow:
            return follow(db, selection, writer)
        try:
            rows = query(db, args, selected, site.times)
        except ValueError as exc:
            print(f"bad time: {exc}", file=sys.stderr)
            return 2
        writer.write(rows[: args.limit])
        writer.close()
    finally:
        db.close()
    # a name that is nowhere (a typo) fails even beside good names; one with no reading yet
    # fails only when nothing at all was found
    return 1 if any(p.unknown for p in problems) or (problems and not rows) else 0


def query(
    db: Database, args: argparse.Namespace, points: list[str], times: TimeFormat
) -> list[StoredReading]:
    if not (args.since or args.until):
        return db.latest(points)
    now = time.time()
    start = times.parse(args.since, now) if args.since else 0.0
    end = times.parse(args.until, now) if args.until else now + 86400
    rows = [r for p in points for r in db.history(p, start, end, args.limit)]
    rows.sort(key=lambda r: (r.ts, r.seq))
    return rows


def follow(
    db: Database, selection: PointSelection, writer: RowWriter, poll_interval: float = FOLLOW_POLL_INTERVAL
) -> int:
    """The latest reading of each selected point, then every reading committed after it, in
    sequence order, until SIGINT or SIGTERM (exit 0). Points that appear later (a new device,
    a codec's new field) are shown when they match."""
    with stop_on_signals() as stopping:
        db.conn.execute("BEGIN")  # one snapshot: the latest rows and the seq to follow from agree
        try:
            last = db.last_seq()
            current = [r for r in db.latest() if selection.matches(r.point)]
        finally:
            db.conn.execute("COMMIT")
        writer.write(current)
        sys.stdout.flush()
        while not stopping():
            if db.last_seq() > last:
                while batch := db.read_after(last, FOLLOW_BATCH):
                    last = batch[-1].seq
                    writer.write(r for r in batch if selection.matches(r.point))
                    if stopping():
                        break
                sys.stdout.flush()
            time.sleep(poll_interval)
    writer.close()
    sys.stdout.flush()
    return 0


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Ctrl-C and SIGTERM end ``--follow`` cleanly between batches (never mid-line); yields a
    function telling whether a stop was asked."""
    asked: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        asked.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(asked)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
