"""Writers for buffered readings on the command line: an aligned table for people, CSV, JSON
lines and a JSON array for files; each takes batches, so a stream never sits in memory."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import Any, Protocol, TextIO

from ..model import StoredReading
from .timefmt import UNSYNCED_MARK, UNSYNCED_NOTE, TimeFormat, exact_value, show_value

FORMATS = ("table", "csv", "json", "ndjson")
CSV_COLUMNS = ("seq", "point", "ts", "value", "unit", "quality", "clock_synced")


class RowWriter(Protocol):
    """Writes batches of buffered readings in one output format; ``close`` ends the output."""

    def write(self, rows: Iterable[StoredReading]) -> int: ...

    def close(self) -> None: ...


class TableWriter:
    """``2026-12-02 06:00:01.250+01:00  lamp-1/level  40 %``; a time taken before the clock
    was set is marked ``*`` and the mark explained once, before its first use."""

    def __init__(self, out: TextIO, times: TimeFormat, point_width: int = 10):
        self.out, self.times, self.width = out, times, point_width
        self.noted_unsynced = False

    def write(self, rows: Iterable[StoredReading]) -> int:
        count = 0
        for r in rows:
            if not r.clock_synced and not self.noted_unsynced:
                self.out.write(UNSYNCED_NOTE + "\n")
                self.noted_unsynced = True
            mark = " " if r.clock_synced else UNSYNCED_MARK
            unit = f" {r.unit}" if r.unit else ""
            quality = "" if r.quality.name == "GOOD" else f"  [{r.quality.name.lower()}]"
            self.out.write(
                f"{self.times.text(r.ts)}{mark} {r.point:<{self.width}}  "
                f"{show_value(r.value)}{unit}{quality}\n"
            )
            count += 1
        return count

    def close(self) -> None:
        pass


def as_dict(r: StoredReading, times: TimeFormat) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "point": r.point,
        "ts": times.iso(r.ts),
        "value": r.value,
        "unit": r.unit,
        "quality": r.quality.name.lower(),
        "clock_synced": r.clock_synced,
    }


class NdjsonWriter:
    """One JSON object a line; floats as ``repr``, so every value reads back exactly."""

    def __init__(self, out: TextIO, times: TimeFormat):
        self.out, self.times = out, times

    def write(self, rows: Iterable[StoredReading]) -> int:
        count = 0
        for r in rows:
            self.out.write(json.dumps(as_dict(r, self.times)) + "\n")
            count += 1
        return count

    def close(self) -> None:
        pass


class JsonArrayWriter:
    """One JSON array, written element by element."""

    def __init__(self, out: TextIO, times: TimeFormat):
        self.out, self.times = out, times
        self.count = 0

    def write(self, rows: Iterable[StoredReading]) -> int:
        count = 0
        for r in rows:
            self.out.write(("[\n" if self.count == 0 else ",\n") + json.dumps(as_dict(r, self.times)))
            self.count += 1
            count += 1
        return count

    def close(self) -> None:
        self.out.write("[]\n" if self.count == 0 else "\n]\n")


class CsvWriter:
    """A header row, then one row a reading; values exact (see timefmt)."""

    def __init__(self, out: TextIO, times: TimeFormat):
        self.times = times
        self.writer = csv.writer(out)
        self.writer.writerow(CSV_COLUMNS)

    def write(self, rows: Iterable[StoredReading]) -> int:
        count = 0
        for r in rows:
            self.writer.writerow(
                [
                    r.seq,
                    r.point,
                    self.times.iso(r.ts),
                    exact_value(r.value),
                    r.unit or "",
                    r.quality.name.lower(),
                    str(r.clock_synced).lower(),
                ]
            )
            count += 1
        return count

    def close(self) -> None:
        pass


def writer_for(fmt: str, out: TextIO, times: TimeFormat, point_width: int = 10) -> RowWriter:
    if fmt == "csv":
        return CsvWriter(out, times)
    if fmt == "ndjson":
        return NdjsonWriter(out, times)
    if fmt == "json":
        return JsonArrayWriter(out, times)
    return TableWriter(out, times, point_width)
