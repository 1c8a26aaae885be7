"""Registering points costs O(1) per new point on the writer and on readers, at 50,000 points.

Counted in SQLite virtual-machine steps, not seconds: the count is the same on a busy machine,
and a reload of the whole points table on every new point (O(N^2)) blows the budget at once.
"""

import sqlite3

import pytest

from gateway.model import Reading
from gateway.store import Database

POINTS = 50_000
BATCH = 1_000
#: VM steps allowed per new point: a lookup, an insert into points and one into readings take
#: about 60 here; a full-table reload per miss takes ~50,000 at this size.
STEPS_PER_POINT = 200


class StepBudget:
    """Interrupts SQLite once a connection has run more VM steps than allowed."""

    def __init__(self, conn: sqlite3.Connection, budget: int, every: int = 100):
        self.steps = 0
        self.budget = budget
        self.every = every
        conn.set_progress_handler(self._tick, every)

    def _tick(self) -> int:
        self.steps += self.every
        return 1 if self.steps > self.budget else 0


def batches():
    for start in range(0, POINTS, BATCH):
        yield [
            Reading(f"dev-{i // 10}/p{i % 10}", float(i), 1_767_225_600.0 + i, "W")
            for i in range(start, start + BATCH)
        ]


def test_writer_and_reader_register_50000_points_in_linear_steps(tmp_path):
    writer = Database(tmp_path / "b.db")
    reader = Database(tmp_path / "b.db", readonly=True)
    assert reader.read_after(0, 10) == []  # the reader opened before any point existed

    written = StepBudget(writer.conn, POINTS * STEPS_PER_POINT)
    try:
        for batch in batches():
            writer.insert(batch)
    except sqlite3.OperationalError as exc:
        pytest.fail(f"writer ran over {STEPS_PER_POINT} VM steps per new point: {exc}")

    read = StepBudget(reader.conn, POINTS * STEPS_PER_POINT)
    try:
        got = reader.read_after(0, POINTS + 1)
    except sqlite3.OperationalError as exc:
        pytest.fail(f"reader ran over {STEPS_PER_POINT} VM steps per new point: {exc}")

    assert len(got) == POINTS
    assert got[0].point == "dev-0/p0" and got[-1].point == f"dev-{(POINTS - 1) // 10}/p9"
    assert all(r.unit == "W" for r in got)
    assert written.steps <= POINTS * STEPS_PER_POINT and read.steps <= POINTS * STEPS_PER_POINT


def test_points_registered_in_a_rolled_back_commit_are_registered_again(tmp_path):
    db = Database(tmp_path / "b.db")
    db.insert([Reading("old/p", 1.0, 100.0)])
    db.conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON readings "
        "WHEN NEW.value = 666 BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(sqlite3.Error):
        db.insert([Reading("new/p", 1.0, 101.0), Reading("old/p", 666, 102.0)])
    db.conn.execute("DROP TRIGGER refuse")

    db.insert([Reading("new/p", 2.0, 103.0)])

    names = {r.point: r.value for r in Database(tmp_path / "b.db", readonly=True).read_after(0, 10)}
    assert names == {"old/p": 1.0, "new/p": 2.0}
