"""Schema versions of the buffer, the migrations between them, and who can still read it.

A migration is a list of SQL statements run in one transaction; ``user_version`` records
which have run, so an old buffer is upgraded in place on start. Each migration also says the
oldest schema version that can still read and write the buffer after it (``readable_by``):
the data partition is shared by both OTA slots, so a gateway rolled back to an older version
opens a newer buffer as long as its own version is at least that floor (README.md, "Schema
changes").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    """The statements that bring the buffer to one version, and the floor they leave.

    ``readable_by`` is the oldest schema version that still reads and writes the buffer
    correctly after these statements. An additive migration (new tables, new nullable or
    defaulted columns, new indexes) keeps the floor where it was; one that changes what
    existing rows mean sets it to its own version, and an older gateway then refuses the file.
    """

    statements: tuple[str, ...]
    readable_by: int


@dataclass(frozen=True, slots=True)
class Schema:
    """A gateway's view of the buffer: the version it writes and how to get there."""

    version: int
    migrations: dict[int, Migration]

    def floor_after(self, version: int) -> int:
        """The floor of a buffer once the migrations up to ``version`` have run."""
        return max(self.migrations[v].readable_by for v in range(1, version + 1))


SCHEMA_VERSION = 2

#: where the floor is recorded: a row of the ``state`` table (schema 2), so recording it
#: needed no schema change. A buffer without the row has the floor of its own version.
FLOOR_NAMESPACE = "schema"
FLOOR_KEY = "readable_by"

# Reading flags: bits 0-1 quality, bit 2 clock not synchronised, bit 3 value is a bool.
FLAG_QUALITY_MASK = 0b11
FLAG_UNSYNCED = 0b100
FLAG_BOOL = 0b1000

MIGRATIONS: dict[int, Migration] = {
    1: Migration(
        readable_by=1,
        statements=(
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
        ),
    ),
    # Additive, but gateways of schema 1 refused any newer buffer (they predate the floor).
    2: Migration(
        readable_by=2,
        statements=(
            """CREATE TABLE state (
               namespace TEXT NOT NULL,
               key TEXT NOT NULL,
               value TEXT NOT NULL,
               updated INTEGER NOT NULL,
               PRIMARY KEY (namespace, key))""",
        ),
    ),
}

CURRENT = Schema(SCHEMA_VERSION, MIGRATIONS)

#: SQL views named for people (and for ``sqlite-utils`` or ``sqlite3`` on the box): point names
#: instead of ids, units, ISO times in UTC, quality as a word. Bools are stored as 1/0.
#:
#: They are not a schema migration on purpose: ``user_version`` guards the tables, and a
#: version bump for views alone would only add a migration to reason about. Views hold no data: ``Database`` (re)creates these whenever a writer opens the
#: buffer and finds a definition missing or different, so an older gateway opens a buffer with
#: them, and a newer one brings its own definitions. Migrations drop them first, so a future
#: table change never trips over a view that names an old column.
VIEWS: dict[str, str] = {
    "readings_view": """CREATE VIEW readings_view AS
    SELECT r.seq AS seq,
           p.name AS point,
           strftime('%Y-%m-%dT%H:%M:%fZ', r.ts / 1000.0, 'unixepoch') AS time,
           r.value AS value,
           p.unit AS unit,
           CASE r.flags & 3 WHEN 0 THEN 'good' WHEN 1 THEN 'uncertain' ELSE 'bad' END AS quality,
           (r.flags & 4) = 0 AS clock_synced,
           r.ts AS ts_ms
      FROM readings r JOIN points p ON p.id = r.point""",
    # the newest reading of each point, by time then sequence (one index probe per point)
    "latest_view": """CREATE VIEW latest_view AS
    SELECT v.* FROM points p
      JOIN readings_view v ON v.seq = (
           SELECT seq FROM readings WHERE point = p.id ORDER BY ts DESC, seq DESC LIMIT 1)""",
}
