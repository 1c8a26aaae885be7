"""Synchronous access to the buffer file: schema, batched inserts, queries, retention.

Pure SQLite, no event loop: the async ``Store`` runs these calls on its own threads.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model import Quality, Reading, StoredReading
from .schema import (
    CURRENT,
    FLAG_BOOL,
    FLAG_QUALITY_MASK,
    FLAG_UNSYNCED,
    FLOOR_KEY,
    FLOOR_NAMESPACE,
    VIEWS,
    Schema,
)

DROPPED_UNFORWARDED = "dropped_unforwarded"
EVICTED_FORWARDED = "evicted_forwarded"
EVICTED_AGE = "evicted_age"
#: readings turned away while the store's queue was full and commits were failing
DROPPED_QUEUE_FULL = "dropped_queue_full"


class StoreFullError(Exception):
    """The disk or the hard quota is full; nothing already committed is lost."""


class SchemaTooNewError(Exception):
    """The buffer was written by a newer gateway whose migrations this one cannot read.

    Nothing was changed in the file: the newer version (or a copy moved aside) still has it."""


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one retention pass removed, by reason, and the buffer's size after it."""

    evicted_forwarded: int
    evicted_age: int
    dropped_unforwarded: int
    used_bytes: int


def _encode_flags(reading: Reading) -> int:
    flags = int(reading.quality) & FLAG_QUALITY_MASK
    if not reading.clock_synced:
        flags |= FLAG_UNSYNCED
    if isinstance(reading.value, bool):
        flags |= FLAG_BOOL
    return flags


def _decode(seq: int, name: str, ts: int, value: Any, flags: int, unit: str | None) -> StoredReading:
    if flags & FLAG_BOOL:
        value = bool(value)
    return StoredReading(
        seq, name, value, ts / 1000.0, unit, Quality(flags & FLAG_QUALITY_MASK), not flags & FLAG_UNSYNCED
    )


#: a row of ``readings`` (with its point's name and unit) as a reading: for offline tools
#: that run their own SQL over the buffer
decode_row = _decode


class Database:
    """One connection to the buffer. Not thread-safe: each thread opens its own."""

    def __init__(self, path: Path | str, *, readonly: bool = False, schema: Schema = CURRENT):
        self.path = Path(path)
        self.schema = schema
        if readonly:
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn = conn
        conn.execute("PRAGMA busy_timeout = 5000")
        try:
            self.check_readable()  # before any pragma that could write
        except SchemaTooNewError:
            conn.close()
            raise
        if not readonly:
            # auto_vacuum must be chosen before the first table exists.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is on disk (WAL fsynced) before we call it committed.
            conn.execute("PRAGMA synchronous = FULL")
            self.migrate()
            self.ensure_views()
        self._point_ids: dict[str, int] = {}
        self._point_units: dict[str, str | None] = {}
        self._point_names: dict[int, tuple[str, str | None]] = {}
        #: points inserted or given a new unit by the transaction under way: forgotten on rollback
        self._touched_in_tx: list[str] = []

    def close(self) -> None:
        self.conn.close()

    # -- schema ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @property
    def readable_by(self) -> int:
        """The oldest schema version that can still read and write this buffer."""
        version = self.schema_version
        try:
            row = self.conn.execute(
                "SELECT value FROM state WHERE namespace = ? AND key = ?", (FLOOR_NAMESPACE, FLOOR_KEY)
            ).fetchone()
        except sqlite3.OperationalError:  # no state table: schema 1 or an empty file
            row = None
        return int(json.loads(row[0])) if row else version

    def check_readable(self) -> None:
        """Refuse, without writing anything, a buffer this gateway's schema cannot read."""
        current = self.schema_version
        if current <= self.schema.version:
            return
        floor = self.readable_by
        if floor > self.schema.version:
            raise SchemaTooNewError(
                f"{self.path} has schema version {current}, newer than this gateway's "
                f"{self.schema.version}, and it needs a gateway of schema {floor} or newer to be "
                f"read; the file was not changed: update the gateway again, or move the buffer "
                f"aside to start an empty one"
            )

    def migrate(self) -> None:
        """Bring the buffer to this gateway's version; a newer one that this gateway can
        still read (its floor is at or below our version) is opened as it is."""
        self.check_readable()
        current = self.schema_version
        # Plain SQL on the stdlib driver: sqlite-utils would add ~13 MB (click, dateutil,
        # pluggy) to a daemon whose whole budget on a Pi is about 40 MB.
        for version in range(current + 1, self.schema.version + 1):
            with self._transaction():
                for name in VIEWS:  # recreated by ensure_views, after the tables changed
                    self.conn.execute(f"DROP VIEW IF EXISTS {name}")
                for statement in self.schema.migrations[version].statements:
                    self.conn.execute(statement)
                if version >= 2:  # the state table exists
                    floor = self.schema.floor_after(version)
                    self.conn.execute(
                        "INSERT INTO state (namespace, key, value, updated) VALUES (?, ?, ?, 0) "
                        "ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value",
                        (FLOOR_NAMESPACE, FLOOR_KEY, json.dumps(floor)),
                    )
                self.conn.execute(f"PRAGMA user_version = {version}")

    def ensure_views(self) -> None:
        """Create the views for people, or replace one whose definition differs; no write
        when they are already as this gateway defines them.

        Best effort: a full or read-only disk must not stop the gateway for a convenience,
        so a failure leaves the views to the next start."""
        existing = dict(self.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
        stale = {name: sql for name, sql in VIEWS.items() if existing.get(name) != sql}
        if not stale:
            return
        try:
            with self._transaction():
                for name, sql in stale.items():
                    self.conn.execute(f"DROP VIEW IF EXISTS {name}")
                    self.conn.execute(sql)
        except sqlite3.OperationalError:
            pass

    def integrity_ok(self) -> bool:
        return bool(self.conn.execute("PRAGMA quick_check").fetchone()[0] == "ok")

    def _transaction(self) -> _Tx:
        return _Tx(self.conn)

    # -- points ---------------------------------------------------------------------------

    def point_id(self, name: str, unit: str | None) -> int:
        """The id of point ``name``, registering it on first sight.

        One indexed lookup per point the cache has not seen, never a reload of the whole
        table: registering N new points costs O(N), so a site with tens of thousands of
        points (or a codec inventing point names) does not stall the writer."""
        pid = self._point_ids.get(name)
        if pid is None:
            row = self.conn.execute("SELECT id, unit FROM points WHERE name = ?", (name,)).fetchone()
            if row is None:
                pid = int(
                    self.conn.execute("INSERT INTO points (name, unit) VALUES (?, ?)", (name, unit)).lastrowid
                    or 0
                )
                self._touched_in_tx.append(name)
                known_unit = unit
            else:
                pid, known_unit = int(row[0]), row[1]
            self._remember(pid, name, known_unit)
        if unit is not None and self._point_units.get(name) != unit:
            self.conn.execute("UPDATE points SET unit = ? WHERE id = ?", (unit, pid))
            self._touched_in_tx.append(name)
            self._remember(pid, name, unit)
        return pid

    def _remember(self, pid: int, name: str, unit: str | None) -> None:
        self._point_ids[name] = pid
        self._point_units[name] = unit
        self._point_names[pid] = (name, unit)

    def _forget_uncommitted_points(self) -> None:
        """After a rollback what it wrote to ``points`` is gone: drop only those entries."""
        for name in self._touched_in_tx:
            pid = self._point_ids.pop(name, None)
            self._point_units.pop(name, None)
            if pid is not None:
                self._point_names.pop(pid, None)
        self._touched_in_tx.clear()

    def point_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM points ORDER BY name")]

    def _name_of(self, pid: int) -> tuple[str, str | None]:
        found = self._point_names.get(pid)
        if found is None:
            # A reader meets points the writer registered after it opened: one indexed
            # lookup each, never a reload of the whole table.
            row = self.conn.execute("SELECT name, unit FROM points WHERE id = ?", (pid,)).fetchone()
            if row is None:
                return (f"?{pid}", None)
            found = (row[0], row[1])
            self._remember(pid, row[0], row[1])
        return found

    # -- ingest ---------------------------------------------------------------------------

    def insert(self, readings: Sequence[Reading], *, dropped_queue_full: int = 0) -> int:
        """Commit ``readings`` in one transaction; returns the last sequence number.

        ``dropped_queue_full`` readings that never reached the queue are counted in the same
        transaction, so the count is durable exactly when the readings around it are."""
        self._touched_in_tx.clear()
        try:
            with self._transaction():
                self._bump(DROPPED_QUEUE_FULL, dropped_queue_full)
                rows = [
                    (self.point_id(r.point, r.unit), int(r.ts * 1000), r.value, _encode_flags(r))
                    for r in readings
                ]
                self.conn.executemany(
                    "INSERT INTO readings (point, ts, value, flags) VALUES (?, ?, ?, ?)", rows
                )
                last = self.last_seq()
            self._touched_in_tx.clear()
            return last
        except sqlite3.Error as exc:
            self._forget_uncommitted_points()
            if not isinstance(exc, sqlite3.OperationalError):
                raise
            if "full" in str(exc).lower():
                raise StoreFullError(f"{self.path}: {exc}") from exc
            raise

    def last_seq(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone()
        return int(row[0]) if row else 0

    # -- queries --------------------------------------------------------------------------

    def read_after(self, after: int, limit: int, points: Iterable[str] | None = None) -> list[StoredReading]:
        """Readings with seq > ``after`` in sequence order, at most ``limit`` of them."""
        sql = "SELECT seq, point, ts, value, flags FROM readings WHERE seq > ?"
        params: list[Any] = [after]
        if points is not None:
            ids = [self._point_ids.get(p) or self._lookup_id(p) for p in points]
            ids = [i for i in ids if i is not None]
            if not ids:
                return []
            sql += f" AND point IN ({','.join('?' * len(ids))})"
            params += ids
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        out = []
        for seq, pid, ts, value, flags in self.conn.execute(sql, params):
            name, unit = self._name_of(pid)
            out.append(_decode(seq, name, ts, value, flags, unit))
        return out

    def _lookup_id(self, name: str) -> int | None:
        row = self.conn.execute("SELECT id FROM points WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else None

    def latest(self, points: Iterable[str] | None = None) -> list[StoredReading]:
        """The newest reading of each point (by timestamp, then sequence)."""
        wanted = None if points is None else set(points)
        out = []
        for pid, name, unit in self.conn.execute("SELECT id, name, unit FROM points ORDER BY name"):
            if wanted is not None and name not in wanted:
                continue
            row = self.conn.execute(
                "SELECT seq, ts, value, flags FROM readings WHERE point = ? "
                "ORDER BY ts DESC, seq DESC LIMIT 1",
                (pid,),
            ).fetchone()
            if row:
                out.append(_decode(row[0], name, row[1], row[2], row[3], unit))
        return out

    def history(
        self, point: str, start: float | None = None, end: float | None = None, limit: int = 100_000
    ) -> list[StoredReading]:
        pid = self._lookup_id(point)
        if pid is None:
            return []
        name, unit = point, self._name_of(pid)[1]
        rows = self.conn.execute(
            "SELECT seq, ts, value, flags FROM readings WHERE point = ? AND ts >= ? AND ts <= ? "
            "ORDER BY ts, seq LIMIT ?",
            (pid, int((start or 0) * 1000), int((end if end is not None else 1e13) * 1000), limit),
        )
        return [_decode(seq, name, ts, value, flags, unit) for seq, ts, value, flags in rows]

    def newest_first(self, point: str) -> Iterator[StoredReading]:
        """Readings of one point, newest first, fetched lazily: the caller stops when it has enough."""
        pid = self._lookup_id(point)
        if pid is None:
            return
        unit = self._name_of(pid)[1]
        rows = self.conn.execute(
            "SELECT seq, ts, value, flags FROM readings WHERE point = ? ORDER BY ts DESC, seq DESC", (pid,)
        )
        for seq, ts, value, flags in rows:
            yield _decode(seq, point, ts, value, flags, unit)

    def oldest_ts(self) -> float | None:
        """The time of the oldest reading held, of any point (one index probe per point)."""
        row = self.conn.execute(
            "SELECT min(t) FROM (SELECT (SELECT min(ts) FROM readings WHERE point = points.id) AS t "
            "FROM points)"
        ).fetchone()
        return None if row is None or row[0] is None else row[0] / 1000.0

    def latest_before(self, points: Iterable[str], ts: float) -> list[StoredReading]:
        """The newest reading of each point at or before ``ts``: what a restart at ``ts`` knew."""
        out = []
        for name in sorted(set(points)):
            pid = self._lookup_id(name)
            if pid is None:
                continue
            row = self.conn.execute(
                "SELECT seq, ts, value, flags FROM readings WHERE point = ? AND ts <= ? "
                "ORDER BY ts DESC, seq DESC LIMIT 1",
                (pid, int(ts * 1000)),
            ).fetchone()
            if row:
                out.append(_decode(row[0], name, row[1], row[2], row[3], self._name_of(pid)[1]))
        return out

    def history_all(self, start: float, end: float) -> list[StoredReading]:
        """Every reading in a time range, in time order; for replaying rules over history."""
        rows = self.conn.execute(
            "SELECT seq, point, ts, value, flags FROM readings WHERE ts >= ? AND ts <= ? ORDER BY ts, seq",
            (int(start * 1000), int(end * 1000)),
        )
        out = []
        for seq, pid, ts, value, flags in rows:
            name, unit = self._name_of(pid)
            out.append(_decode(seq, name, ts, value, flags, unit))
        return out

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM readings").fetchone()[0])

    # -- cursors, counters, state ---------------------------------------------------------

    def get_cursor(self, name: str) -> int | None:
        row = self.conn.execute("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else None

    def set_cursor(self, name: str, seq: int, now: float) -> None:
        self.conn.execute(
            "INSERT INTO cursors (name, seq, updated) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, updated = excluded.updated",
            (name, seq, int(now * 1000)),
        )

    def cursors(self) -> dict[str, int]:
        return {n: s for n, s in self.conn.execute("SELECT name, seq FROM cursors")}

    def counter(self, name: str) -> int:
        row = self.conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def counters(self) -> dict[str, int]:
        return {n: v for n, v in self.conn.execute("SELECT name, value FROM counters")}

    def _bump(self, name: str, amount: int) -> None:
        if amount:
            self.conn.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, amount),
            )

    def get_state(self, namespace: str, key: str) -> Any:
        row = self.conn.execute(
            "SELECT value FROM state WHERE namespace = ? AND key = ?", (namespace, key)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def all_state(self, namespace: str) -> dict[str, Any]:
        return {
            k: json.loads(v)
            for k, v in self.conn.execute("SELECT key, value FROM state WHERE namespace = ?", (namespace,))
        }

    def put_state(self, namespace: str, items: dict[str, Any], now: float) -> None:
        """Write several keys at once, atomically. A value of None deletes the key."""
        with self._transaction():
            for key, value in items.items():
                if value is None:
                    self.conn.execute("DELETE FROM state WHERE namespace = ? AND key = ?", (namespace, key))
                else:
                    self.conn.execute(
                        "INSERT INTO state (namespace, key, value, updated) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value, "
                        "updated = excluded.updated",
                        (namespace, key, json.dumps(value, separators=(",", ":")), int(now * 1000)),
                    )

    # -- retention ------------------------------------------------------------------------

    def used_bytes(self) -> int:
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    def forwarded_seq(self, consumers: Sequence[str] | None) -> int:
        """Readings up to this seq have reached every consumer that must see them.

        With no consumers configured, nothing waits to be forwarded, so everything counts.
        """
        if not consumers:
            return self.last_seq()
        cursors = self.cursors()
        return min(cursors.get(name, 0) for name in consumers)

    def apply_retention(
        self,
        *,
        now: float,
        max_age: float | None,
        max_bytes: int,
        hard_max_bytes: int,
        consumers: Sequence[str] | None,
        chunk: int = 5000,
    ) -> RetentionResult:
        """Evict forwarded readings by age and soft quota; drop unforwarded ones only past
        the hard quota. Every removal is counted."""
        forwarded = self.forwarded_seq(consumers)
        age_evicted = forwarded_evicted = dropped = 0
        if max_age is not None:
            cutoff = int((now - max_age) * 1000)
            with self._transaction():
                age_evicted = self.conn.execute(
                    "DELETE FROM readings WHERE seq <= ? AND ts < ?", (forwarded, cutoff)
                ).rowcount
                self._bump(EVICTED_AGE, age_evicted)
        while (used := self.used_bytes()) > max_bytes:
            with self._transaction():
                n = self.conn.execute(
                    "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings WHERE seq <= ? "
                    "ORDER BY seq LIMIT ?)",
                    (forwarded, self._rows_to_free(used - max_bytes, chunk)),
                ).rowcount
                self._bump(EVICTED_FORWARDED, n)
            forwarded_evicted += n
            if n == 0:
                break
        while (used := self.used_bytes()) > hard_max_bytes:
            with self._transaction():
                n = self.conn.execute(
                    "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings ORDER BY seq LIMIT ?)",
                    (self._rows_to_free(used - hard_max_bytes, chunk),),
                ).rowcount
                self._bump(DROPPED_UNFORWARDED, n)
            dropped += n
            if n == 0:
                break
        if age_evicted or forwarded_evicted or dropped:
            self.conn.execute("PRAGMA incremental_vacuum")
        return RetentionResult(forwarded_evicted, age_evicted, dropped, self.used_bytes())

    def _rows_to_free(self, excess_bytes: int, most: int) -> int:
        """How many of the oldest rows to delete to free about ``excess_bytes``: never far
        more than needed, since unforwarded readings may be among them."""
        rows = self.count()
        if rows == 0:
            return 0
        per_row = max(1.0, self.used_bytes() / rows)
        return max(1, min(most, int(excess_bytes / per_row * 1.1) + 1))

    def checkpoint(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class _Tx:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass
