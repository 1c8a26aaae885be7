"""max_rate and min_interval hold across a restart: the limits start from the last write the
buffer knows, not from nothing. A graceful restart in-process on the same data directory, and a
kill -9 of a real `gateway run`."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import textwrap
import time
from pathlib import Path

import pytest

from gateway.actuation import WriteSkipped
from gateway.clock import ManualClock
from gateway.service import Service
from tests.conftest import running
from tests.core.test_daemon_process import start_daemon, wait_for

LAMP = """
[[devices]]
name = "lamp"
driver = "simulated"
interval = "1h"
[devices.options]
[[devices.options.points]]
name = "level"
unit = "%"
writable = true
initial = 0

[actuators."lamp/level"]
min = 0
max = 100
max_rate = 20
min_interval = "{min_interval}"
"""


def test_the_first_write_after_a_restart_ramps_from_the_last_written_value(site):
    config = site(LAMP.format(min_interval="0s"))
    start = float(int(time.time()))  # whole seconds: the buffer keeps milliseconds

    async def before_restart():
        service = Service(config, clock=ManualClock(start))
        async with running(service):
            outcome = await service.actuation.write("lamp/level", 100, source="api")
        assert outcome.written == 100

    async def after_restart():
        service = Service(config, clock=ManualClock(start + 1.5))
        async with running(service):
            return await service.actuation.write("lamp/level", 31, source="rule:dim")

    asyncio.run(before_restart())
    outcome = asyncio.run(after_restart())
    assert outcome.result == "ramping"
    assert outcome.written == pytest.approx(70.0)  # 1.5 s at 20 %/s, not 100 -> 31 in one step


def test_min_interval_counts_from_the_last_write_before_the_restart(site):
    config = site(LAMP.format(min_interval="10s"))
    start = float(int(time.time()))  # whole seconds: the buffer keeps milliseconds

    async def before_restart():
        service = Service(config, clock=ManualClock(start))
        async with running(service):
            await service.actuation.write("lamp/level", 40, source="api")

    async def after_restart():
        service = Service(config, clock=ManualClock(start + 4))
        async with running(service):
            with pytest.raises(WriteSkipped) as skipped:
                await service.actuation.write("lamp/level", 50, source="api")
            return skipped.value.retry_at

    asyncio.run(before_restart())
    assert asyncio.run(after_restart()) == pytest.approx(start + 10, abs=0.01)


def test_a_last_write_stamped_after_now_counts_as_made_now(site):
    """The clock went back across the restart (no RTC, NTP not yet synced): the limits hold
    for their own span from now, never until the old time comes round again."""
    config = site(LAMP.format(min_interval="10s"))
    start = float(int(time.time()))  # whole seconds: the buffer keeps milliseconds

    async def before_restart():
        service = Service(config, clock=ManualClock(start))
        async with running(service):
            await service.actuation.write("lamp/level", 40, source="api")

    async def after_restart():
        clock = ManualClock(start - 3600)
        service = Service(config, clock=clock)
        async with running(service):
            with pytest.raises(WriteSkipped) as skipped:
                await service.actuation.write("lamp/level", 50, source="api")
            await clock.advance(10)
            outcome = await service.actuation.write("lamp/level", 50, source="api")
            return skipped.value.retry_at, outcome

    asyncio.run(before_restart())
    retry_at, outcome = asyncio.run(after_restart())
    assert retry_at == pytest.approx(start - 3600 + 10, abs=0.01)
    assert outcome.written == 50


KILL_SITE = """
[gateway]
id = "limits-site"
data_dir = "data"

[store]
flush_interval = "20ms"

[[devices]]
name = "lamp"
driver = "simulated"
interval = "1h"
[devices.options]
[[devices.options.points]]
name = "level"
unit = "%"
writable = true
initial = 0

[[devices]]
name = "knob"
driver = "simulated"
interval = "200ms"
[devices.options]
[[devices.options.points]]
name = "setting"
waveform = "constant"
min = {knob}
max = {knob}

[rules]
directory = "rules"

[actuators."lamp/level"]
min = 0
max = 100
max_rate = 1
"""

FOLLOW_KNOB = """
[[rule]]
name = "follow-knob"
[[rule.action]]
set = "lamp/level"
expr = "knob/setting * 10"
"""


def level_writes(db_path: Path) -> list[dict]:
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return []
    try:
        rows = conn.execute(
            "SELECT r.value FROM readings r JOIN points p ON p.id = r.point "
            "WHERE p.name = 'events/actuation' ORDER BY r.seq"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return [body for (text,) in rows if (body := json.loads(text))["point"] == "lamp/level"]


def test_kill_9_then_restart_the_lamp_ramps_from_where_it_was(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "follow.toml").write_text(textwrap.dedent(FOLLOW_KNOB))
    config = tmp_path / "gateway.toml"
    db_path = tmp_path / "data" / "buffer.db"

    config.write_text(textwrap.dedent(KILL_SITE.format(knob=10)))
    first = start_daemon(config)
    try:
        wait_for(
            lambda: any(w.get("result") == "written" and w["value"] == 100 for w in level_writes(db_path))
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL
    before = len(level_writes(db_path))

    config.write_text(textwrap.dedent(KILL_SITE.format(knob=0)))  # the rule now wants 0 %
    second = start_daemon(config)
    try:
        wait_for(lambda: len(level_writes(db_path)) > before)
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    first_after_restart = level_writes(db_path)[before]
    assert first_after_restart["value"] == 0
    assert first_after_restart["result"] == "ramping"
    # one step of at most 1 %/s since the last write before the kill, not 100 -> 0 at once
    assert first_after_restart["written"] >= 50
