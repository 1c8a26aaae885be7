"""Last accepted rule files at a live reload: a new broken file holds its actuators at their
fail-safe until fixed; a removed file's accepted copy is forgotten so its rules never return."""

from __future__ import annotations

import asyncio
import time

from gateway.clock import ManualClock
from gateway.rules.accepted import FOLDER
from gateway.service import Service
from tests.conftest import running, wait_until
from tests.rules.helpers import actuation_records, level, publish, quiet
from tests.rules.test_service import FOLLOW, _settle

FAILSAFE = """
[actuators."lamp/level"]
fail_safe = 90
"""

OTHER = """
[[rule]]
name = "door"
condition = "sensor/door"
[[rule.action]]
set = "lamp/level"
value = 60
"""


def test_new_broken_file_holds_its_actuators_at_fail_safe_until_fixed(rules_site, tmp_path):
    config = rules_site({"other.toml": OTHER}, FAILSAFE)
    path = tmp_path / "rules" / "follow.toml"

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service) as svc:
            component = svc.components["rules"]
            await publish(svc, "sensor/door", True)
            await wait_until(lambda: level(svc) == 60)
            path.write_text(FOLLOW.replace("sensor/traffic * 10", "sensor/trafic * 10"))
            await _settle(clock, 2.5)
            await wait_until(lambda: level(svc) == 90)  # skipped: its lamp goes to fail-safe
            assert component.health()["failsafe_held"] == {"lamp/level": "follow.toml"}
            assert component.health()["rejected_outcome"] == {"follow.toml": "skipped_failsafe"}
            await publish(svc, "sensor/door", False)
            await publish(svc, "sensor/door", True)  # the other rule steps back while held
            await quiet(svc)
            assert level(svc) == 90
            path.write_text(FOLLOW)
            await _settle(clock, 2.5)
            await wait_until(lambda: not component.health()["failsafe_held"])
            await publish(svc, "sensor/traffic", 3)
            await wait_until(lambda: level(svc) == 30)
            await wait_until(lambda: (tmp_path / "data" / FOLDER / "follow.toml").exists())
            records = await actuation_records(svc)
        assert any(r["source"] == "failsafe:follow.toml" and r["value"] == 90 for r in records)

    asyncio.run(scenario())


def test_removed_file_forgets_its_accepted_copy(rules_site, tmp_path):
    config = rules_site({"follow.toml": FOLLOW, "other.toml": OTHER})
    copies = tmp_path / "data" / FOLDER

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service) as svc:
            await wait_until(lambda: (copies / "follow.toml").exists() and (copies / "other.toml").exists())
            (tmp_path / "rules" / "follow.toml").unlink()
            await _settle(clock, 2.5)
            await wait_until(lambda: not (copies / "follow.toml").exists())
            assert svc.components["rules"].health()["files"] == {"other.toml": 1}

    asyncio.run(scenario())
    assert (copies / "other.toml").read_text() == OTHER
