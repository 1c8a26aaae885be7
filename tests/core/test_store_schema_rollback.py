"""The buffer across an OTA rollback: a newer gateway's additive migration, then this one.

The data partition is shared by both slots. The "next version" here is a test-only schema 3
(a new column, a new table, a new index) on top of this gateway's migrations.
"""

import asyncio
import hashlib
import re
import sqlite3

import pytest

from gateway.model import Reading
from gateway.store import Database, Store
from gateway.store.config import StoreConfig
from gateway.store.database import SchemaTooNewError
from gateway.store.schema import MIGRATIONS, SCHEMA_VERSION, Migration, Schema

NEXT = SCHEMA_VERSION + 1
#: what a next release might add: readings get a source column, points get labels
NEXT_ADDITIVE = Schema(
    NEXT,
    {
        **MIGRATIONS,
        NEXT: Migration(
            readable_by=SCHEMA_VERSION,
            statements=(
                "ALTER TABLE readings ADD COLUMN source TEXT",
                "CREATE TABLE point_labels (point INTEGER PRIMARY KEY REFERENCES points(id), label TEXT NOT NULL)",
                "CREATE INDEX readings_source ON readings(source)",
            ),
        ),
    },
)
#: a next release that changes what existing rows mean: older gateways must not touch it
NEXT_BREAKING = Schema(
    NEXT,
    {
        **MIGRATIONS,
        NEXT: Migration(readable_by=NEXT, statements=("ALTER TABLE readings RENAME COLUMN ts TO ts_us",)),
    },
)
CONFIG = StoreConfig(flush_interval=0.01, flush_readings=50, queue_size=10_000, max_age=None)


def batch(n, start, point="lamp-1/level", ts0=1_767_225_600.0):
    return [Reading(point, float(i), ts0 + i, "%") for i in range(start, start + n)]


async def with_current_store(tmp_path, work):
    """Run ``work(store)`` on this gateway's real Store, committing everything before close."""
    store = Store(tmp_path, CONFIG)
    await store.open()
    task = asyncio.create_task(store.run())
    try:
        return await work(store)
    finally:
        await store.flush()
        task.cancel()
        await store.close()


def test_an_older_gateway_reads_and_writes_a_buffer_a_newer_one_migrated(tmp_path):
    path = tmp_path / "buffer.db"

    # 1. this gateway (the old slot) fills the buffer and forwards part of it
    async def old_first(store):
        await store.put(batch(100, 0))
        await store.wait_committed(99, timeout=10)
        await store.set_cursor("uplink:city", 60)
        await store.put_state("rules", {"timer": {"due": 5}})

    asyncio.run(with_current_store(tmp_path, old_first))

    # 2. the update boots, migrates to the next schema and writes with its new column/table
    new = Database(path, schema=NEXT_ADDITIVE)
    assert new.schema_version == NEXT and new.readable_by == SCHEMA_VERSION
    new.insert(batch(50, 100))
    new.conn.execute("UPDATE readings SET source = 'modbus' WHERE seq > 100")
    new.conn.execute("INSERT INTO point_labels (point, label) VALUES (1, 'Lamp 1')")
    new.set_cursor("uplink:city", 120, 0)
    new.close()

    # 3. it never commits: the old slot boots again, reads everything and keeps writing
    async def old_again(store):
        assert store.last_seq == 150
        got = await store.read_after(0, 1000)
        assert [r.value for r in got] == [float(i) for i in range(150)]
        assert all(r.unit == "%" for r in got)
        assert await store.get_cursor("uplink:city") == 120
        assert await store.get_state("rules", "timer") == {"due": 5}
        await store.put(batch(30, 150) + batch(5, 0, point="cabinet/door"))
        await store.wait_committed(185, timeout=10)

    asyncio.run(with_current_store(tmp_path, old_again))
    old = Database(path)
    assert old.schema_version == NEXT, "the older gateway left the newer version in place"
    assert old.readable_by == SCHEMA_VERSION
    old.close()

    # 4. the update is installed again: everything from both versions is there
    new = Database(path, schema=NEXT_ADDITIVE)
    rows = new.conn.execute("SELECT seq, value, source FROM readings ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == list(range(1, 186))
    assert [r[1] for r in rows[:180]] == [float(i) for i in range(180)]
    assert {r[2] for r in rows[100:150]} == {"modbus"}
    assert {r[2] for r in rows[150:]} == {None}  # written by the older version: the default
    assert new.conn.execute("SELECT label FROM point_labels").fetchall() == [("Lamp 1",)]
    assert {r.point for r in new.latest()} == {"lamp-1/level", "cabinet/door"}
    assert new.insert(batch(1, 180)) == 186
    assert new.integrity_ok()
    new.close()


def test_a_fresh_buffer_records_its_floor_and_an_unrecorded_one_counts_as_its_version(tmp_path):
    db = Database(tmp_path / "fresh.db")
    assert db.readable_by == SCHEMA_VERSION
    assert db.get_state("schema", "readable_by") == SCHEMA_VERSION
    db.conn.execute("DELETE FROM state")  # a buffer made before floors were recorded
    assert db.readable_by == db.schema_version == SCHEMA_VERSION
    db.close()


def file_digest(path):
    """The buffer and its write-ahead log, if any (an empty log holds nothing)."""
    wal = path.with_name(path.name + "-wal")
    return (hashlib.sha256(path.read_bytes()).hexdigest(), wal.read_bytes() if wal.exists() else b"")


@pytest.mark.parametrize("readonly", [False, True])
def test_an_older_gateway_refuses_a_breaking_migration_and_changes_nothing(tmp_path, readonly):
    path = tmp_path / "buffer.db"
    new = Database(path, schema=NEXT_BREAKING)
    new.conn.execute("INSERT INTO points (id, name) VALUES (1, 'a/x')")
    new.conn.execute("INSERT INTO readings (point, ts_us, value) VALUES (1, 5, 1.0)")
    new.checkpoint()
    new.close()
    before = file_digest(path)
    with pytest.raises(SchemaTooNewError) as caught:
        Database(path, readonly=readonly)
    message = str(caught.value)
    assert str(path) in message
    assert re.search(rf"schema version {NEXT}\b.*this gateway's {SCHEMA_VERSION}\b", message)
    assert f"schema {NEXT} or newer" in message and "not changed" in message
    assert file_digest(path) == before
    again = Database(path, schema=NEXT_BREAKING)
    assert again.conn.execute("SELECT ts_us FROM readings").fetchall() == [(5,)]
    again.close()


def test_the_store_refuses_it_too_with_the_same_words(tmp_path):
    Database(tmp_path / "buffer.db", schema=NEXT_BREAKING).close()

    async def scenario():
        with pytest.raises(SchemaTooNewError, match="needs a gateway of schema"):
            await Store(tmp_path, CONFIG).open()

    asyncio.run(scenario())


def statement_is_additive(sql: str) -> bool:
    text = " ".join(sql.split()).upper()
    if text.startswith(("CREATE TABLE ", "CREATE INDEX ", "CREATE UNIQUE INDEX ")):
        return True
    added = re.match(r"ALTER TABLE \w+ ADD COLUMN (.*)", text)
    return bool(added) and ("NOT NULL" not in added.group(1) or "DEFAULT" in added.group(1))


def test_every_migration_that_keeps_the_floor_is_additive():
    """The rule of gateway/store/README.md, checked on the real migration list: a migration
    that lets older gateways keep the buffer only adds tables, indexes and columns an older
    INSERT can leave out."""
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))
    floor = 1
    for version, migration in sorted(MIGRATIONS.items()):
        assert floor <= migration.readable_by <= version, f"migration {version}: floor out of range"
        if migration.readable_by < version:
            bad = [s for s in migration.statements if not statement_is_additive(s)]
            assert not bad, (
                f"migration {version} keeps floor {migration.readable_by} but is not additive: {bad}"
            )
        floor = migration.readable_by
    assert statement_is_additive("ALTER TABLE readings ADD COLUMN source TEXT")
    assert not statement_is_additive("ALTER TABLE readings ADD COLUMN source TEXT NOT NULL")
    assert not statement_is_additive("ALTER TABLE readings RENAME COLUMN ts TO ts_us")
    assert all(statement_is_additive(s) for s in NEXT_ADDITIVE.migrations[NEXT].statements)


def test_a_reader_without_the_state_table_is_judged_by_its_version(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[1].statements:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    db = Database(path, readonly=True)
    assert db.readable_by == 1
    db.close()
