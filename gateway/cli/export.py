"""``gateway export``: stream a time range out of the buffer as CSV, JSON or JSON lines, beside
the running daemon.

The buffer is read through sqlite-utils, the library behind the offline tools. It is imported
inside the command only: the daemon never loads it (its memory budget on a Pi is about 40 MB,
and a test keeps it so). One read-only statement over one WAL snapshot yields every reading in
the range exactly once while the daemon keeps committing; rows are fetched as they are
written out, and SQLite's sorter spills to a temporary file rather than memory for the time
order.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..model import StoredReading
from ..store.database import decode_row
from .offline import BufferSite, add_buffer_args, locate
from .pointsel import PointSelection
from .rowformat import writer_for
from .timefmt import TimeFormat

if TYPE_CHECKING:
    import sqlite_utils

#: a progress bar appears only for an export still running after this long, and only on a terminal
PROGRESS_AFTER = 1.0
PROGRESS_EVERY = 0.2
BAR_WIDTH = 30

EXPORT_SQL = """
SELECT r.seq AS seq, p.name AS point, p.unit AS unit, r.ts AS ts, r.value AS value, r.flags AS flags
  FROM readings r JOIN points p ON p.id = r.point
 WHERE r.ts >= :start AND r.ts < :end {point_filter}
 ORDER BY r.ts, r.seq
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "export",
        help="write the readings of a time range as CSV, JSON or JSON lines",
        description="Stream readings with since <= time < until out of the buffer, in time order; "
        "works while the daemon runs. Consecutive ranges neither overlap nor miss a reading.",
    )
    add_buffer_args(parser)
    parser.add_argument(
        "point", nargs="*", help="device/point names or globs ('lamp-*/level'); none = every point"
    )
    parser.add_argument(
        "--since",
        help="start (included): a duration back from now (2h) or an ISO time; "
        "without an offset it is in the site's time zone; default: the oldest",
    )
    parser.add_argument("--until", help="end (excluded), same forms; default: now")
    parser.add_argument(
        "--format",
        choices=("csv", "json", "ndjson"),
        default="csv",
        help="csv (default), json (one array) or ndjson (one object a line)",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        help="write this file (complete or not at all) instead of standard output",
    )
    parser.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    site = locate(args)
    if isinstance(site, int):
        return site
    now = time.time()
    try:
        start = site.times.parse(args.since, now) if args.since else 0.0
        end = site.times.parse(args.until, now) if args.until else now
    except ValueError as exc:
        print(f"bad time: {exc}", file=sys.stderr)
        return 2
    if start >= end:
        print(
            f"--since ({site.times.text(start)}) is not before --until ({site.times.text(end)})",
            file=sys.stderr,
        )
        return 2
    import sqlite_utils  # only here: see the module docstring

    conn = sqlite3.connect(f"file:{site.path}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout = 5000")
    db = sqlite_utils.Database(conn, execute_plugins=False)
    try:
        names = {row["name"]: row["id"] for row in db.query("SELECT id, name FROM points")}
        selection = PointSelection(tuple(args.point))
        problems = selection.problems(sorted(names), site.configured_points)
        for problem in problems:
            print(problem.message, file=sys.stderr)
        if any(p.unknown for p in problems):
            return 1
        ids = None if selection.everything else [names[n] for n in selection.select(names)]
        rows = stream(db, round(start * 1000), round(end * 1000), ids)
        # the bar runs from the oldest reading held when the range starts before it (by
        # sequence: one probe, not a scan for the smallest time)
        oldest = db.execute("SELECT ts FROM readings ORDER BY seq LIMIT 1").fetchone()
        start = start if oldest is None else max(start, oldest[0] / 1000)
        if args.output is None:
            count = write(rows, sys.stdout, args.format, site, start, end)
        else:
            count = write_file(rows, args.output, args.format, site, start, end)
    finally:
        db.close()
    if args.output is not None or sys.stderr.isatty():
        print(
            f"exported {count} readings from {site.times.text(start)} to {site.times.text(end)}"
            + (f" into {args.output}" if args.output else ""),
            file=sys.stderr,
        )
    return 0


def stream(
    db: sqlite_utils.Database, start_ms: int, end_ms: int, point_ids: list[int] | None
) -> Iterator[StoredReading]:
    """Readings with start <= ts < end (milliseconds), in time order, fetched lazily."""
    point_filter = "" if point_ids is None else "AND r.point IN (SELECT value FROM json_each(:ids))"
    params: dict[str, object] = {"start": start_ms, "end": end_ms}
    if point_ids is not None:
        params["ids"] = json.dumps(point_ids)  # one parameter however many points
    for row in db.query(EXPORT_SQL.format(point_filter=point_filter), params):
        yield decode_row(row["seq"], row["point"], row["ts"], row["value"], row["flags"], row["unit"])


def write(
    rows: Iterator[StoredReading], out: TextIO, fmt: str, site: BufferSite, start: float, end: float
) -> int:
    writer = writer_for(fmt, out, site.times)
    progress = Progress.on_terminal(sys.stderr, start, end, site.times)
    count = 0
    for reading in rows:
        writer.write((reading,))
        count += 1
        if count % 256 == 0:
            progress.update(reading.ts, count)
    writer.close()
    progress.finish(count)
    return count


def write_file(
    rows: Iterator[StoredReading], path: Path, fmt: str, site: BufferSite, start: float, end: float
) -> int:
    """Written beside ``path`` and renamed into place, so a stopped export leaves no half file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            count = write(rows, out, fmt, site, start, end)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


class Progress:
    """A one-line bar on standard error for an export that takes a while: how far through the
    time range it is (rows come in time order, so no count of the range is needed first)."""

    def __init__(
        self,
        stream: TextIO | None,
        start: float,
        end: float,
        times: TimeFormat,
        clock: Callable[[], float] = time.monotonic,
        after: float = PROGRESS_AFTER,
    ):
        self.stream, self.start, self.end, self.times = stream, start, end, times
        self.clock = clock
        self.begun = clock()
        self.after = after
        self.shown_at: float | None = None

    @classmethod
    def on_terminal(cls, stream: TextIO, start: float, end: float, times: TimeFormat) -> Progress:
        return cls(stream if stream.isatty() else None, start, end, times)

    def update(self, ts: float, count: int) -> None:
        if self.stream is None:
            return
        now = self.clock()
        if now - self.begun < self.after or (
            self.shown_at is not None and now - self.shown_at < PROGRESS_EVERY
        ):
            return
        self.shown_at = now
        span = self.end - self.start
        done = 1.0 if span <= 0 else min(1.0, max(0.0, (ts - self.start) / span))
        filled = int(done * BAR_WIDTH)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:4.0%}  "
            f"{count} readings, at {self.times.text(ts)}"
        )
        self.stream.flush()

    def finish(self, count: int) -> None:
        if self.stream is not None and self.shown_at is not None:
            self.stream.write(f"\r[{'#' * BAR_WIDTH}] 100%  {count} readings\x1b[K\n")
            self.stream.flush()
