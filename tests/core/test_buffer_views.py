"""The buffer's views for people, and the README's sqlite-utils queries against them."""

import json
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import gateway.store.database as database
from gateway.model import Quality, Reading
from gateway.store import Database
from gateway.store.schema import SCHEMA_VERSION

README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED_PATH = "/var/lib/gateway/buffer.db"


def make_buffer(path):
    db = Database(path)
    db.insert(
        [
            Reading("lamp-1/level", 2301 * 0.1, 1764651601.25, "%"),
            Reading("lamp-1/level", 40.0, 1764651660.0, "%", clock_synced=False),
            # committed later but stamped earlier: not the newest
            Reading("lamp-1/level", 10.0, 1764651630.0, "%"),
            Reading("cabinet-io/door_closed", True, 1764651600.0, quality=Quality.UNCERTAIN),
        ]
    )
    db.close()


def test_views_name_points_units_iso_times_and_quality(tmp_path):
    make_buffer(tmp_path / "buffer.db")
    conn = sqlite3.connect(f"file:{tmp_path / 'buffer.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM readings_view ORDER BY seq")]
    assert rows[0] == {
        "seq": 1,
        "point": "lamp-1/level",
        "time": "2025-12-02T05:00:01.250Z",
        "value": 230.10000000000002,
        "unit": "%",
        "quality": "good",
        "clock_synced": 1,
        "ts_ms": 1764651601250,
    }
    assert rows[1]["clock_synced"] == 0
    assert rows[3]["value"] == 1 and rows[3]["quality"] == "uncertain" and rows[3]["unit"] is None
    latest = {r["point"]: r["value"] for r in conn.execute("SELECT * FROM latest_view")}
    assert latest == {"lamp-1/level": 40.0, "cabinet-io/door_closed": 1}
    conn.close()


def test_views_leave_the_schema_version_alone_and_cost_no_write_on_reopen(tmp_path):
    make_buffer(tmp_path / "buffer.db")
    db = Database(tmp_path / "buffer.db")
    cookie = db.conn.execute("PRAGMA schema_version").fetchone()[0]
    assert db.schema_version == SCHEMA_VERSION == 2  # a gateway that knows schema 2 opens it
    db.close()
    db = Database(tmp_path / "buffer.db")
    assert db.conn.execute("PRAGMA schema_version").fetchone()[0] == cookie
    db.close()


def test_an_older_definition_is_replaced_and_a_buffer_without_views_gains_them(tmp_path):
    make_buffer(tmp_path / "buffer.db")
    conn = sqlite3.connect(tmp_path / "buffer.db")
    conn.execute("DROP VIEW latest_view")
    conn.execute("DROP VIEW readings_view")
    conn.execute("CREATE VIEW readings_view AS SELECT seq FROM readings")
    conn.commit()
    conn.close()
    db = Database(tmp_path / "buffer.db")
    assert db.conn.execute("SELECT point FROM latest_view ORDER BY point").fetchall() == [
        ("cabinet-io/door_closed",),
        ("lamp-1/level",),
    ]
    db.close()


def test_views_that_cannot_be_created_do_not_stop_the_gateway(tmp_path, monkeypatch):
    make_buffer(tmp_path / "buffer.db")
    conn = sqlite3.connect(tmp_path / "buffer.db")
    conn.execute("DROP VIEW latest_view")
    conn.commit()
    conn.close()
    monkeypatch.setitem(database.VIEWS, "latest_view", "CREATE VIEW latest_view AS SELECT nope FROM nowhere")
    db = Database(tmp_path / "buffer.db")  # opens, ingests, the views wait for the next start
    db.insert([Reading("lamp-1/level", 1.0, 1764651700.0)])
    assert db.count() == 5
    db.close()


def documented_queries():
    commands = [
        line.strip() for line in README.read_text().splitlines() if line.startswith("    sqlite-utils ")
    ]
    assert len(commands) >= 3
    return commands


def test_the_readme_sqlite_utils_queries_work_on_the_buffer(tmp_path):
    buffer = tmp_path / "buffer.db"
    make_buffer(buffer)
    tool = Path(sys.executable).with_name("sqlite-utils")
    outputs = []
    for command in documented_queries():
        args = [str(buffer) if a == DOCUMENTED_PATH else a for a in shlex.split(command)]
        assert str(buffer) in args, command
        run = subprocess.run([str(tool), *args[1:]], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, (command, run.stderr)
        outputs.append(run.stdout)
    latest, recent, counts = outputs[:3]
    assert json.loads(latest) == [
        {"point": "cabinet-io/door_closed", "time": "2025-12-02T05:00:00.000Z", "value": 1, "unit": None},
        {"point": "lamp-1/level", "time": "2025-12-02T05:01:00.000Z", "value": 40.0, "unit": "%"},
    ]
    assert recent.splitlines()[0] == "time,value" and len(recent.splitlines()) == 4
    assert re.search(r"lamp-1/level\s+3\s+2025-12-02T05:01:00.000Z", counts)
