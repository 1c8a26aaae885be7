"""A rule problem is never fatal: nothing from loading or evaluating a rule file leaves the rules
component into the service's TaskGroup, at start or at a live reload."""

from __future__ import annotations

import asyncio
import time

from gateway.clock import ManualClock
from gateway.service import Service
from tests.conftest import running, wait_until
from tests.rules.helpers import actuation_records, level, publish
from tests.rules.test_service import FOLLOW, _settle

DEEP = """
[[rule]]
name = "deep"
condition = "{condition}"
[[rule.action]]
set = "lamp/level"
value = 1
"""

FAILSAFE = """
[actuators."lamp/level"]
fail_safe = 100
"""


def test_a_500_deep_expression_at_live_reload_is_rejected_and_the_service_keeps_running(rules_site, tmp_path):
    config = rules_site({"follow.toml": FOLLOW})

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service) as svc:
            component = svc.components["rules"]
            deep = "(" * 500 + "sensor/traffic > 0" + ")" * 500
            (tmp_path / "rules" / "deep.toml").write_text(DEEP.format(condition=deep))
            await _settle(clock, 2.5)
            await wait_until(lambda: "deep.toml" in component.health()["rejected"])
            (problem,) = component.health()["rejected"]["deep.toml"]
            assert "deep.toml:4: rule[0].condition: rule 'deep': expression nested more than 50" in problem
            await publish(svc, "sensor/traffic", 4)
            await wait_until(lambda: level(svc) == 40)  # the other rules still run

    asyncio.run(scenario())


def test_a_500_deep_expression_at_start_is_rejected_and_the_service_runs(rules_site, tmp_path):
    deep = "(" * 500 + "sensor/traffic > 0" + ")" * 500
    config = rules_site({"follow.toml": FOLLOW, "deep.toml": DEEP.format(condition=deep)})

    async def scenario():
        service = Service(config, clock=ManualClock(time.time()))
        async with running(service) as svc:
            assert "deep.toml" in svc.components["rules"].health()["rejected"]
            await publish(svc, "sensor/traffic", 2)
            await wait_until(lambda: level(svc) == 20)

    asyncio.run(scenario())


def test_a_python_error_while_evaluating_is_a_rule_error_with_fail_safe(rules_site):
    # round(inf) raises OverflowError inside Python: the rule errs, its lamp goes to fail-safe
    config = rules_site(
        {"follow.toml": FOLLOW.replace("sensor/traffic * 10", "round(sensor/traffic)")}, FAILSAFE
    )

    async def scenario():
        service = Service(config, clock=ManualClock(time.time()))
        async with running(service) as svc:
            await publish(svc, "sensor/traffic", 7.4)
            await wait_until(lambda: level(svc) == 7)
            await publish(svc, "sensor/traffic", float("inf"))
            await wait_until(lambda: level(svc) == 100)
            await publish(svc, "sensor/traffic", 3)
            await wait_until(lambda: level(svc) == 3)  # evaluates again: the rule takes over
            records = await actuation_records(svc)
        failsafe = [r for r in records if r["source"] == "failsafe:follow"]
        assert failsafe and "OverflowError" in failsafe[0]["reason"]

    asyncio.run(scenario())


def test_an_engine_bug_while_feeding_is_logged_and_the_service_keeps_running(rules_site, caplog):
    config = rules_site({"follow.toml": FOLLOW})

    async def scenario():
        service = Service(config, clock=ManualClock(time.time()))
        async with running(service) as svc:
            component = svc.components["rules"]
            original = component.engine.feed
            calls = {"n": 0}

            def failing_once(batch, now):
                calls["n"] += 1
                if calls["n"] == 1:
                    raise ValueError("a bug in the engine")
                return original(batch, now)

            component.engine.feed = failing_once
            await publish(svc, "sensor/traffic", 1)
            await wait_until(lambda: component.counts.get("engine_failures") == 1)
            await publish(svc, "sensor/traffic", 5)
            await wait_until(lambda: level(svc) == 50)

    asyncio.run(scenario())
    assert "event=rules_feed_failed" in caplog.text
