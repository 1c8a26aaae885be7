"""Manual overrides set by `gateway override` in another process reach the running daemon;
rules do not fight them and take over again when they end."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from gateway.actuation import LimitError, WriteSkipped
from gateway.clock import ManualClock
from gateway.service import Service
from tests.conftest import running, wait_until
from tests.rules.helpers import actuation_records, level, publish, quiet
from tests.rules.test_service import FOLLOW, _settle


def gateway_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_override_holds_point_until_expiry_then_rules_take_over(rules_site, tmp_path):
    config = rules_site({"follow.toml": FOLLOW})
    cfg = str(tmp_path / "gateway.toml")

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service):
            await publish(service, "sensor/traffic", 3)
            await wait_until(lambda: level(service) == 30)

            result = await asyncio.to_thread(
                gateway_cli, "override", "lamp/level", "80", "--for", "10m", "-c", cfg
            )
            assert result.returncode == 0, result.stderr
            await _settle(clock, 2.5)
            await wait_until(lambda: level(service) == 80)

            listing = await asyncio.to_thread(gateway_cli, "override", "-c", cfg)
            assert "lamp/level" in listing.stdout and "80" in listing.stdout

            await publish(service, "sensor/traffic", 5)  # the rule wants 50 but must not fight
            await publish(service, "sensor/traffic", 6)
            await quiet(service)  # everything the readings caused has happened: nothing was written
            assert level(service) == 80

            await _settle(clock, 600)
            await wait_until(lambda: level(service) == 60)  # expired: rules take over again
            records = await actuation_records(service)
        sources = [(r["source"], r["result"]) for r in records]
        assert ("override:cli:" + records[1]["source"].split(":", 2)[2], "written") in sources
        assert sources.count(("rule:follow", "skipped")) == 1  # one record per override, no flood

    asyncio.run(scenario())


def test_cli_clear_ends_the_override(rules_site, tmp_path):
    config = rules_site({"follow.toml": FOLLOW})
    cfg = str(tmp_path / "gateway.toml")

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service):
            await publish(service, "sensor/traffic", 2)
            await wait_until(lambda: level(service) == 20)
            assert (
                await asyncio.to_thread(gateway_cli, "override", "lamp/level", "70", "--for", "1h", "-c", cfg)
            ).returncode == 0
            await _settle(clock, 2.5)
            await wait_until(lambda: level(service) == 70)
            cleared = await asyncio.to_thread(gateway_cli, "override", "--clear", "lamp/level", "-c", cfg)
            assert cleared.returncode == 0, cleared.stderr
            await _settle(clock, 2.5)
            await wait_until(lambda: level(service) == 20)

    asyncio.run(scenario())


def test_cli_override_rejects_bad_point_value_and_range(rules_site, tmp_path):
    rules_site({"follow.toml": FOLLOW}, '[actuators."lamp/level"]\nmax = 90\n')
    cfg = str(tmp_path / "gateway.toml")
    unknown = gateway_cli("override", "lamp/levle", "50", "--for", "1m", "-c", cfg)
    assert unknown.returncode == 2 and "did you mean 'lamp/level'" in unknown.stderr
    not_number = gateway_cli("override", "lamp/level", "bright", "--for", "1m", "-c", cfg)
    assert not_number.returncode == 2 and "'bright' is not a number" in not_number.stderr
    too_high = gateway_cli("override", "lamp/level", "95", "--for", "1m", "-c", cfg)
    assert too_high.returncode == 2 and "outside the allowed range" in too_high.stderr


LIMITS = """
[actuators."lamp/level"]
min_interval = "10s"
max_rate = 5
max = 90
"""


def test_actuation_limits_min_interval_and_rate(rules_site):
    config = rules_site({"follow.toml": FOLLOW}, LIMITS)

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service):
            actuation = service.actuation
            first = await actuation.write("lamp/level", 10, source="api")
            assert first.written == 10 and first.retry_at is None
            try:
                await actuation.write("lamp/level", 20, source="api")
                raise AssertionError("second write within min_interval was accepted")
            except WriteSkipped as exc:
                assert exc.retry_at == clock.time() + 10
            await clock.advance(10)
            ramp = await actuation.write("lamp/level", 80, source="api")
            assert (ramp.result, ramp.written) == ("ramping", 60.0)  # 5 per s for 10 s
            try:
                await actuation.write("lamp/level", 95, source="cli")
                raise AssertionError("out-of-range manual write was accepted")
            except LimitError as exc:
                assert "0..90" in str(exc) or "..90" in str(exc)

    asyncio.run(scenario())


def test_rule_write_ramps_to_target_under_max_rate(rules_site):
    config = rules_site({"follow.toml": FOLLOW}, '[actuators."lamp/level"]\nmax_rate = 2\n')

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service):
            await publish(service, "sensor/traffic", 1)
            await wait_until(lambda: level(service) == 10)
            await publish(service, "sensor/traffic", 5)  # target 50, at most 2 %/s
            await quiet(service)
            for _ in range(40):
                if level(service) == 50:
                    break
                await _settle(clock, 1)
            await wait_until(lambda: level(service) == 50)
            records = await actuation_records(service)
        assert any(r["result"] == "ramping" for r in records)

    asyncio.run(scenario())


def test_override_set_in_process_ramps_to_its_value_under_max_rate(rules_site):
    config = rules_site({"follow.toml": FOLLOW}, '[actuators."lamp/level"]\nmax_rate = 10\n')

    async def scenario():
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service):
            await publish(service, "sensor/traffic", 1)
            await wait_until(lambda: level(service) == 10)
            await service.overrides.set("lamp/level", 90, 3600, "api")
            seen = []
            for _ in range(10):
                await _settle(clock, 2.0)
                await quiet(service)
                seen.append(level(service))
                if level(service) == 90:
                    break
            await wait_until(lambda: level(service) == 90)
        assert any(v is not None and 10 < v < 90 for v in seen)  # it got there in steps, not at once

    asyncio.run(scenario())
