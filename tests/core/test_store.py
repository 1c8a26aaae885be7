"""The buffer: sequence numbers, value types, cursors, retention, migrations, a full disk."""

import asyncio
import sqlite3

import pytest

from gateway.model import Quality, Reading
from gateway.store import Database, Store, StoreFullError
from gateway.store.config import StoreConfig
from gateway.store.database import DROPPED_UNFORWARDED, EVICTED_FORWARDED, SchemaTooNewError
from gateway.store.schema import MIGRATIONS, SCHEMA_VERSION


def readings(n, start=0, point="dev/p", ts0=1_767_225_600.0):
    return [Reading(point, float(i), ts0 + i) for i in range(start, start + n)]


def test_values_round_trip_with_their_types_and_flags(tmp_path):
    db = Database(tmp_path / "b.db")
    db.insert(
        [
            Reading("d/f", 1.5, 100.0, "W"),
            Reading("d/i", 7, 100.0),
            Reading("d/b", True, 100.0),
            Reading("d/s", "FULL", 100.0, quality=Quality.UNCERTAIN, clock_synced=False),
        ]
    )
    got = {r.point: r for r in db.read_after(0, 10)}
    assert got["d/f"].value == 1.5 and got["d/f"].unit == "W"
    assert got["d/i"].value == 7 and type(got["d/i"].value) is int
    assert got["d/b"].value is True
    assert got["d/s"].value == "FULL"
    assert got["d/s"].quality is Quality.UNCERTAIN and got["d/s"].clock_synced is False
    assert got["d/f"].clock_synced is True


def test_points_are_interned_not_repeated(tmp_path):
    db = Database(tmp_path / "b.db")
    db.insert(readings(100, point="a-long-device-name/a-long-point-name"))
    assert db.conn.execute("SELECT count(*) FROM points").fetchone()[0] == 1
    assert db.conn.execute("SELECT typeof(point) FROM readings LIMIT 1").fetchone()[0] == "integer"


def test_sequence_never_reused_after_eviction(tmp_path):
    db = Database(tmp_path / "b.db")
    last = db.insert(readings(10))
    db.conn.execute("DELETE FROM readings")
    assert db.insert(readings(1)) == last + 1


def test_read_after_pages_every_reading_exactly_once(tmp_path):
    db = Database(tmp_path / "b.db")
    db.insert(readings(25, point="a/x") + readings(25, point="b/y"))
    seen, cursor = [], 0
    while page := db.read_after(cursor, 7):
        seen += [r.seq for r in page]
        cursor = page[-1].seq
    assert seen == list(range(1, 51))
    assert {r.point for r in db.read_after(0, 100, ["b/y"])} == {"b/y"}


def test_latest_and_history(tmp_path):
    db = Database(tmp_path / "b.db")
    db.insert(readings(5, point="a/x") + readings(3, point="b/y"))
    latest = {r.point: r.value for r in db.latest()}
    assert latest == {"a/x": 4.0, "b/y": 2.0}
    hist = db.history("a/x", 1_767_225_601.0, 1_767_225_603.0)
    assert [r.value for r in hist] == [1.0, 2.0, 3.0]


def test_retention_evicts_forwarded_first_and_counts_dropped_unforwarded(tmp_path):
    db = Database(tmp_path / "b.db")
    for i in range(20):
        db.insert(readings(1000, start=i * 1000))
    db.set_cursor("upstream", 5000, 0)
    size = db.used_bytes()
    # Soft quota below the size: only forwarded readings (seq <= 5000) may go.
    result = db.apply_retention(
        now=2e9, max_age=None, max_bytes=size // 2, hard_max_bytes=size * 2, consumers=["upstream"]
    )
    assert result.dropped_unforwarded == 0
    assert 0 < result.evicted_forwarded <= 5000
    assert db.read_after(0, 1)[0].seq > 5000 or result.evicted_forwarded < 5000
    remaining_unforwarded = db.conn.execute("SELECT count(*) FROM readings WHERE seq > 5000").fetchone()[0]
    assert remaining_unforwarded == 15000
    # Hard quota below the size: unforwarded readings are dropped, oldest first, and counted.
    result = db.apply_retention(
        now=2e9, max_age=None, max_bytes=size // 4, hard_max_bytes=size // 4, consumers=["upstream"]
    )
    assert result.dropped_unforwarded > 0
    assert db.counter(DROPPED_UNFORWARDED) == result.dropped_unforwarded
    assert db.counter(EVICTED_FORWARDED) > 0
    oldest = db.read_after(0, 1)[0].seq
    assert db.conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 20000 - oldest + 1


def test_retention_by_age_keeps_unforwarded(tmp_path):
    db = Database(tmp_path / "b.db")
    db.insert(readings(100))
    db.set_cursor("up", 40, 0)
    result = db.apply_retention(
        now=1_767_225_600.0 + 10 * 86400,
        max_age=86400,
        max_bytes=10**12,
        hard_max_bytes=10**12,
        consumers=["up"],
    )
    assert result.evicted_age == 40
    assert db.count() == 60


def test_migrates_an_old_buffer_in_place(tmp_path):
    path = tmp_path / "b.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[1].statements:
        conn.execute(statement)
    conn.execute("INSERT INTO points (id, name) VALUES (1, 'a/x')")
    conn.execute("INSERT INTO readings (point, ts, value, flags) VALUES (1, 1000, 3.5, 0)")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    db = Database(path)
    assert db.schema_version == SCHEMA_VERSION
    assert db.read_after(0, 10)[0].value == 3.5
    db.put_state("ns", {"k": {"a": 1}}, 0)
    assert db.get_state("ns", "k") == {"a": 1}


def test_refuses_a_buffer_from_a_newer_gateway(tmp_path):
    path = tmp_path / "b.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNewError, match="newer than this gateway"):
        Database(path)


def test_full_database_raises_store_full_and_keeps_committed(tmp_path):
    db = Database(tmp_path / "b.db")
    db.insert(readings(10))
    pages = db.conn.execute("PRAGMA page_count").fetchone()[0]
    db.conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    with pytest.raises(StoreFullError):
        for i in range(100):
            db.insert(readings(1000, start=10 + i * 1000))
    assert [r.value for r in db.read_after(0, 10)] == [float(i) for i in range(10)]
    assert db.integrity_ok()


def test_store_keeps_readings_queued_through_a_full_disk_and_commits_after(tmp_path):
    config = StoreConfig(flush_interval=0.01, flush_readings=100, queue_size=100_000, max_age=None)

    async def scenario():
        store = Store(tmp_path, config)
        await store.open()
        task = asyncio.create_task(store.run())
        await store.put(readings(10))
        await store.wait_committed(0, timeout=10)
        pages = store.wdb.conn.execute("PRAGMA page_count").fetchone()[0]
        store.wdb.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        await store.put(readings(20_000, start=10))
        for _ in range(500):
            if store.full:
                break
            await asyncio.sleep(0.01)
        assert store.full and store.last_error
        assert store.health()["full"] is True
        store.wdb.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
        await store.wait_committed(20_009, timeout=30)
        task.cancel()
        await store.close()
        db = Database(tmp_path / "buffer.db")
        values = [r.value for r in db.read_after(0, 30_000)]
        assert values == [float(i) for i in range(20_010)]

    asyncio.run(scenario())


def test_put_applies_back_pressure_when_queue_is_full(tmp_path):
    config = StoreConfig(flush_interval=0.01, flush_readings=100, queue_size=100)

    async def scenario():
        store = Store(tmp_path, config)
        await store.open()
        await store.put(readings(100))
        blocked = asyncio.create_task(store.put(readings(1, start=100)))
        await asyncio.sleep(0.05)
        assert not blocked.done()  # no committer running: the producer must wait
        runner = asyncio.create_task(store.run())
        await asyncio.wait_for(blocked, 10)
        await store.wait_committed(100, timeout=10)
        runner.cancel()
        await store.close()
        assert Database(tmp_path / "buffer.db").count() == 101

    asyncio.run(scenario())
