"""The rules component inside a running service: hot reload, restart mid-`for`, fail-safe,
limits. A ManualClock drives every timer; waits are bounded, never timed assertions."""

from __future__ import annotations

import asyncio
import time

from gateway.clock import ManualClock
from gateway.service import Service
from tests.conftest import running, wait_until
from tests.rules.helpers import actuation_records, level, publish

FOLLOW = """
[[rule]]
name = "follow"
[[rule.action]]
set = "lamp/level"
expr = "sensor/traffic * 10"
"""


async def _settle(clock: ManualClock, seconds: float) -> None:
    await clock.advance(seconds)  # returns once every task it woke waits again


def test_rule_writes_through_actuation_and_records_it(rules_site):
    config = rules_site({"follow.toml": FOLLOW})

    async def scenario():
        service = Service(config, clock=ManualClock(time.time()))
        async with running(service):
            await publish(service, "sensor/traffic", 3)
            await wait_until(lambda: level(service) == 30)
            records = await actuation_records(service)
        assert {"point": "lamp/level", "value": 30, "source": "rule:follow", "result": "written"} in records

    asyncio.run(scenario())


def test_hot_reload_broken_edit_keeps_old_rules_and_fixed_edit_takes_over(rules_site, tmp_path):
    config = rules_site({"follow.toml": FOLLOW})
    path = tmp_path / "rules" / "follow.toml"

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service):
            component = service.components["rules"]
            await publish(service, "sensor/traffic", 3)
            await wait_until(lambda: level(service) == 30)

            path.write_text(FOLLOW.replace("sensor/traffic * 10", "sensor/trafic * 2 +"))
            await _settle(clock, 2.5)
            await wait_until(lambda: component.health()["rejected"])
            problems = component.health()["rejected"]["follow.toml"]
            assert any("did you mean 'sensor/traffic'" in p and "follow.toml:6" in p for p in problems)
            await publish(service, "sensor/traffic", 5)
            await wait_until(lambda: level(service) == 50)  # the old rule still fires

            path.write_text(FOLLOW.replace("sensor/traffic * 10", "sensor/traffic * 2"))
            await _settle(clock, 2.5)
            await wait_until(lambda: not component.health()["rejected"])
            await publish(service, "sensor/traffic", 6)
            await wait_until(lambda: level(service) == 12)  # the edited rule fires
            await service.store.flush()
            events = [r.value for r in await service.store.history("events/rules")]
        assert any('"rejected"' in e for e in events)

    asyncio.run(scenario())


def test_added_and_removed_files_are_picked_up(rules_site, tmp_path):
    config = rules_site({"follow.toml": FOLLOW})

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service):
            component = service.components["rules"]
            (tmp_path / "rules" / "follow.toml").unlink()
            (tmp_path / "rules" / "double.toml").write_text(
                FOLLOW.replace("* 10", "* 20").replace('"follow"', '"double"')
            )
            await _settle(clock, 2.5)
            await wait_until(lambda: list(component.health()["files"]) == ["double.toml"])
            await publish(service, "sensor/traffic", 2)
            await wait_until(lambda: level(service) == 40)
        assert list(component.engine.rules) == ["double"]

    asyncio.run(scenario())


HOLD = """
[[rule]]
name = "busy-street"
condition = "sensor/traffic > 5"
for = "5m"
[[rule.action]]
set = "lamp/level"
value = 100
"""


def test_restart_in_the_middle_of_for_fires_at_the_original_time(rules_site):
    config = rules_site({"hold.toml": HOLD})
    start = time.time()

    async def first_run():
        clock = ManualClock(start)
        service = Service(config, clock=clock)
        async with running(service):
            await publish(service, "sensor/traffic", 10)
            await wait_until(lambda: service.components["rules"].engine.states["busy-street"].hold_until)
            await _settle(clock, 240)  # 4 of the 5 minutes
            assert level(service) == 0

    async def second_run():
        clock = ManualClock(start + 270)  # the gateway was down for 30 s
        service = Service(config, clock=clock)
        async with running(service):
            state = service.components["rules"].engine.states["busy-street"]
            assert state.hold_until == start + 300
            await _settle(clock, 25)
            assert level(service) == 0
            await _settle(clock, 10)
            await wait_until(lambda: level(service) == 100)
            return service.hub.latest["lamp/level"].ts

    asyncio.run(first_run())
    fired_at = asyncio.run(second_run())
    assert fired_at == start + 300  # one minute after the restart, not five


def test_condition_false_during_downtime_cancels_after_restart(rules_site):
    config = rules_site({"hold.toml": HOLD})
    start = time.time()

    async def first_run():
        clock = ManualClock(start)
        service = Service(config, clock=clock)
        async with running(service):
            await publish(service, "sensor/traffic", 10)
            await wait_until(lambda: service.components["rules"].engine.states["busy-street"].hold_until)

    async def second_run():
        clock = ManualClock(start + 60)
        service = Service(config, clock=clock)
        async with running(service):
            await publish(service, "sensor/traffic", 1)
            await wait_until(
                lambda: service.components["rules"].engine.states["busy-street"].hold_until is None
            )
            await _settle(clock, 600)
            assert level(service) == 0

    asyncio.run(first_run())
    asyncio.run(second_run())


FAILSAFE = """
[actuators."lamp/level"]
fail_safe = 100
min = 20
max = 100
stale_after = "1m"
"""


def test_failsafe_on_stale_input_then_rules_take_over(rules_site):
    config = rules_site({"follow.toml": FOLLOW.replace("* 10", "* 10 + 10")}, FAILSAFE)

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service):
            await publish(service, "sensor/traffic", 2)
            await wait_until(lambda: level(service) == 30)
            await _settle(clock, 61)
            await wait_until(lambda: level(service) == 100)
            await publish(service, "sensor/traffic", 4)
            await wait_until(lambda: level(service) == 50)
            await publish(service, "sensor/traffic", 0)  # 10 asked, clamped to min
            await wait_until(lambda: level(service) == 20)
            records = await actuation_records(service)
        failsafe = [r for r in records if r["source"].startswith("failsafe:")]
        assert failsafe and failsafe[0]["value"] == 100 and "sensor/traffic" in failsafe[0]["reason"]
        assert {
            "point": "lamp/level",
            "value": 10,
            "source": "rule:follow",
            "result": "clamped",
            "written": 20.0,
        } in records

    asyncio.run(scenario())
