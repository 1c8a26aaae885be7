"""Two real gateway daemons on loopback: A's rule reacts to B's loop detector and drives B's
lamp through B's actuation path; B killed -> A's fail-safe; B back -> A re-subscribes alone;
wrong OSCORE keys on A write nothing on B."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiocoap
import cbor2
import pytest
from aiocoap.numbers.codes import Code

from gateway.config import load_config
from gateway.driver import WriteError
from gateway.service import Service
from tests.coap_api.helpers import coap_client, request
from tests.conftest import running, wait_until

from .helpers import free_port
from .peers import MAX_AGE_CAP, STALE_AFTER, WRONG_SECRET, Daemon, control_client_oscore_dir, write_a, write_b


async def until(predicate, timeout: float = 30.0) -> float:
    """Wait for ``predicate`` (checked every 20 ms); returns the seconds it took."""
    started = time.monotonic()
    await wait_until(predicate, timeout=timeout, interval=0.02)
    return time.monotonic() - started


async def set_loop(client: aiocoap.Context, port: int, occupied: bool) -> None:
    answer = await request(
        client,
        Code.PUT,
        f"coap://127.0.0.1:{port}/points/loop/occupied",
        payload=cbor2.dumps(occupied),
        content_format=60,
    )
    assert answer.code == Code.CHANGED, answer


def applied_on_b(b: Daemon, value: int, since_ms: int) -> bool:
    return any(
        r["point"] == "lamp/level"
        and r.get("value") == value
        and r["source"] == "api"
        and r["result"] == "written"
        for r in b.actuations(since_ms)
    )


def test_rule_on_a_drives_b_fails_safe_when_b_dies_and_resubscribes(tmp_path):
    port = free_port()
    b = Daemon(write_b(tmp_path / "b", port))
    a = Daemon(write_a(tmp_path / "a", port))

    async def scenario() -> None:
        b.start()
        a.start()
        async with coap_client(control_client_oscore_dir(tmp_path), port) as tester:
            # B is up and A, having read B's discovery, observes its points with B's units
            await until(lambda: a.latest("cabinet-b/lamp/power") is not None)
            assert a.rows("SELECT unit FROM readings_view WHERE point = 'cabinet-b/lamp/power' LIMIT 1") == [
                ("W",)
            ]
            # readings keep B's timestamps: each one A stored is one B stored
            # (B may notify before its own buffer commits: wait for B's commit, not for luck)
            a_times = {ts for ts, _ in a.readings("cabinet-b/loop/occupied")}
            assert a_times
            await until(lambda: a_times <= {ts for ts, _ in b.readings("loop/occupied")})

            # the loop is free: A's rule dims B's lamp, applied on B by B's actuation path
            start_ms = int(time.time() * 1000)
            await until(lambda: applied_on_b(b, 20, 0))
            await until(lambda: b.latest("lamp/level") == 20)
            # a car on B's loop: A's rule brightens B's lamp ahead of it
            start_ms = int(time.time() * 1000)
            await set_loop(tester, port, True)
            await until(lambda: applied_on_b(b, 80, start_ms))
            await until(lambda: b.latest("lamp/level") == 80 and a.latest("lamp-a/level") == 80)

            # B dies: A's rule input goes silent and A's fail-safe holds its lamp within the bound
            b.kill()
            killed = time.monotonic()
            await until(lambda: a.latest("lamp-a/level") == 100)
            took = time.monotonic() - killed
            failsafes = [r for r in a.actuations() if r["source"].startswith("failsafe:")]
            assert {r["point"] for r in failsafes} == {"lamp-a/level", "cabinet-b/lamp/level"}
            # B cannot take its share of the fail-safe while it is down: A records the refusal
            assert any(r["point"] == "cabinet-b/lamp/level" and r["result"] == "failed" for r in failsafes)
            assert took >= STALE_AFTER * 0.5  # not at once: only after the rule's silence bound
            await until(lambda: a.latest("cabinet-b/online") == 0, timeout=MAX_AGE_CAP + 15)

            # B comes back (a new process, no memory of A's registrations): A re-subscribes alone
            restart_ms = int(time.time() * 1000)
            b.start()
            await until(lambda: any(ts >= restart_ms for ts, _ in a.readings("cabinet-b/loop/occupied")))
            await until(lambda: a.latest("cabinet-b/online") == 1)
            # the rule takes over again from the fail-safe: the fresh loop state (free) dims B
            await until(lambda: applied_on_b(b, 20, restart_ms))
            start_ms = int(time.time() * 1000)
            await set_loop(tester, port, True)
            await until(lambda: applied_on_b(b, 80, start_ms))
            await until(lambda: a.latest("lamp-a/level") == 80)

    try:
        asyncio.run(scenario())
    finally:
        a.stop()
        b.stop()
    assert "Traceback" not in a.log.read_text(), a.log.read_text()[-3000:]


def test_wrong_oscore_key_on_a_writes_nothing_and_b_limits_hold(tmp_path):
    port = free_port()
    b = Daemon(write_b(tmp_path / "b", port))
    right = load_config(write_a(tmp_path / "right", port, rules=None))
    wrong = load_config(write_a(tmp_path / "wrong", port, rules=None, secret=WRONG_SECRET))

    async def scenario() -> None:
        b.start()
        await until(lambda: b.latest("lamp/level") is not None)
        service = Service(wrong)
        async with running(service):
            await asyncio.sleep(1.0)  # give it time to try discovery and registrations
            since = int(time.time() * 1000)
            with pytest.raises(WriteError) as caught:
                await service.actuation.write("cabinet-b/lamp/level", 33, source="cli")
            assert "cabinet-b/lamp/level" in str(caught.value)
            assert "OSCORE failed" in str(caught.value) and "check the keys" in str(caught.value)
            runner = service.devices.runners["cabinet-b"]
            assert runner.health_report()["detail"]["online"] is not True
            assert "cabinet-b/loop/occupied" not in service.hub.latest  # it reads nothing either
        await asyncio.sleep(0.5)
        assert not [r for r in b.actuations(since) if r["point"] == "lamp/level"]
        assert b.latest("lamp/level") == 100  # the streetlight's start value, untouched

        service = Service(right)
        async with running(service):
            await wait_until(lambda: "cabinet-b/loop/occupied" in service.hub.latest, timeout=20)
            # B's own limit (max 90) holds for a write that comes from A
            with pytest.raises(WriteError) as caught:
                await service.actuation.write("cabinet-b/lamp/level", 95, source="cli")
            # the refusal is B's (A has no range for the point), with B's reason
            assert "answered 5.03" in str(caught.value) and "outside the allowed range 0..90" in str(
                caught.value
            )
            await service.actuation.write("cabinet-b/lamp/level", 33, source="cli")
            await until(lambda: b.latest("lamp/level") == 33)

    try:
        asyncio.run(scenario())
    finally:
        b.stop()


def test_a_few_hundred_points_from_one_glob(tmp_path: Path):
    """Discovery spans Block2 answers; every matching point is observed with its own registration."""
    port = free_port()
    body = "\n".join(f'[[devices.options.points]]\nname = "p{i}"\nwaveform = "counter"' for i in range(300))
    b_dir = tmp_path / "b"
    config = write_b(b_dir, port, interval="500ms")
    config.write_text(
        config.read_text() + f'\n[[devices]]\nname = "meter"\ndriver = "simulated"\n'
        f'interval = "500ms"\n[devices.options]\nprofile = "custom"\n{body}\n'
    )
    b = Daemon(config)
    a_config = load_config(write_a(tmp_path / "a", port, rules=None, observe='["meter/*"]'))

    async def scenario() -> None:
        b.start()
        await until(lambda: b.latest("meter/p299") is not None)
        service = Service(a_config)
        async with running(service):
            await wait_until(
                lambda: sum(1 for p in service.hub.latest if p.startswith("cabinet-b/meter/")) == 300,
                timeout=60,
            )
            detail = service.devices.runners["cabinet-b"].health_report()["detail"]
            assert detail["resources"] == 302  # 300 by glob + the 2 declared points

    try:
        asyncio.run(scenario())
    finally:
        b.stop()
