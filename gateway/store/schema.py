"""Schema versions of the buffer and the migrations between them.

A migration is a list of SQL statements run in one transaction; ``user_version`` records
which have run, so an old buffer is upgraded in place on start.
"""

from __future__ import annotations

SCHEMA_VERSION = 2

# Reading flags: bits 0-1 quality, bit 2 clock not synchronised, bit 3 value is a bool.
FLAG_QUALITY_MASK = 0b11
FLAG_UNSYNCED = 0b100
FLAG_BOOL = 0b1000

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE points (
               id INTEGER PRIMARY KEY,
               name TEXT NOT NULL UNIQUE,
               unit TEXT)""",
        # AUTOINCREMENT: sequence numbers must never be reused, even after the newest
        # rows are evicted, because uplinks and pull clients resume from them.
        """CREATE TABLE readings (
               seq INTEGER PRIMARY KEY AUTOINCREMENT,
               point INTEGER NOT NULL REFERENCES points(id),
               ts INTEGER NOT NULL,
               value,
               flags INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX readings_point_ts ON readings(point, ts)",
        """CREATE TABLE cursors (
               name TEXT PRIMARY KEY,
               seq INTEGER NOT NULL,
               updated INTEGER NOT NULL)""",
        """CREATE TABLE counters (
               name TEXT PRIMARY KEY,
               value INTEGER NOT NULL)""",
    ],
    2: [
        """CREATE TABLE state (
               namespace TEXT NOT NULL,
               key TEXT NOT NULL,
               value TEXT NOT NULL,
               updated INTEGER NOT NULL,
               PRIMARY KEY (namespace, key))""",
    ],
}
