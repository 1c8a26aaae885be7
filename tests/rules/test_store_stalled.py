"""Control does not wait on storage: with a store that cannot commit (SQLite refusing new pages,
or a really full tmpfs), rules still switch the lamp and fail-safes still fire; when the disk
returns, every accepted reading is committed and health says ok again. Waits are bounded
conditions, never timed assertions."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import shutil
import struct
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.config import load_config
from gateway.service import Service
from gateway.store import Database
from tests.conftest import running, wait_until, write_site
from tests.core.disk import fill_disk, free_disk
from tests.core.test_store import readings
from tests.modbus.peers import pymodbus_tcp
from tests.rules.helpers import level, publish

FOLLOW_CURRENT = """
[[rule]]
name = "follow-current"
[[rule.action]]
set = "lamp/level"
expr = "meter/current_l1 * 10"
"""


def site_body(meter_port: int, lamp_port: int) -> str:
    return textwrap.dedent(f"""
    [gateway]
    id = "stalled-store"
    data_dir = "data"

    [store]
    queue_size = 100            # the smallest allowed: a stalled disk fills it in a second
    flush_interval = "20ms"

    [[devices]]
    name = "meter"
    driver = "modbus"
    interval = "100ms"
    [devices.options]
    profile = "energy_meter"
    host = "127.0.0.1"
    port = {meter_port}
    unit = 1

    [[devices]]
    name = "lamp"
    driver = "modbus"
    interval = "100ms"
    [devices.options]
    profile = "lamp_controller"
    host = "127.0.0.1"
    port = {lamp_port}
    unit = 2

    [rules]
    directory = "rules"
    reload_interval = "1s"

    [actuators."lamp/level"]
    fail_safe = 100
    min = 0
    max = 100
    stale_after = "1s"
    """)


def float32(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def test_rules_and_fail_safes_keep_driving_a_modbus_lamp_while_the_store_cannot_commit(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "follow.toml").write_text(FOLLOW_CURRENT)

    async def lamp_level(peer) -> int:
        return (await peer.get(2, "holding_register", 0, 1))[0]

    async def wait_for_level(peer, expected: int) -> None:
        for _ in range(1500):
            if await lamp_level(peer) == expected:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"lamp level {await lamp_level(peer)} never became {expected}")

    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            lamp, lamp_port = await stack.enter_async_context(pymodbus_tcp(units=(2,)))
            meter_server = pymodbus_tcp(units=(1,))
            meter, meter_port = await meter_server.__aenter__()
            meter_up = True
            try:
                await meter.set(1, "input_register", 6, float32(3.0))
                config = load_config(write_site(tmp_path, header=site_body(meter_port, lamp_port)))
                service = Service(config)
                async with running(service):
                    store = service.store
                    await wait_for_level(lamp, 30)
                    await wait_until(lambda: store.last_seq > 0, timeout=15)

                    try:
                        await fill_disk(store)  # from here on no commit needing a new page succeeds
                        await wait_until(lambda: store.dropped_readings > 0, timeout=30)
                        assert store.stalled and store.last_error
                        committed_before = store.last_seq
                        assert service.health()["status"] == "degraded"
                        accepted = [(r.point, int(r.ts * 1000), r.value) for r in store._pending]
                        assert len(accepted) >= config.store.queue_size

                        # a rule trigger still reaches the lamp, though no reading can be stored
                        await meter.set(1, "input_register", 6, float32(5.0))
                        await wait_for_level(lamp, 50)
                        await meter.set(1, "input_register", 6, float32(2.0))
                        await wait_for_level(lamp, 20)
                        assert service.actuation.dropped_records >= 2  # records: best effort, counted
                        assert service.health()["actuation"]["dropped_records"] >= 2

                        # the meter falls silent: the fail-safe still reaches the lamp
                        await meter_server.__aexit__(None, None, None)
                        meter_up = False
                        await wait_for_level(lamp, 100)
                        assert store.last_seq == committed_before  # really nothing committed all along
                    finally:
                        await free_disk(store)  # the disk returns
                    await wait_until(lambda: store.last_error is None and store.pending == 0, timeout=30)
                    assert store.last_seq >= committed_before + len(accepted)
                    # the store's reason is gone; the meter, silent since, rightly still degrades
                    await wait_until(
                        lambda: not any("buffer" in r for r in service.health()["reasons"]), timeout=10
                    )
                    assert [r.split(":")[0] for r in service.health()["reasons"]] == [
                        "device meter is offline"
                    ]
                    dropped = store.dropped_readings
            finally:
                if meter_up:
                    await meter_server.__aexit__(None, None, None)

        db = Database(tmp_path / "data" / "buffer.db")
        after = [
            (r.point, int(round(r.ts * 1000)), r.value)
            for r in db.read_after(committed_before, len(accepted))
        ]
        assert after == accepted  # every reading the store accepted was committed, in order
        assert db.counter("dropped_queue_full") >= dropped > 0  # turned-away readings, counted durably

    asyncio.run(asyncio.wait_for(scenario(), 120))


FOLLOW_TRAFFIC = """
[[rule]]
name = "follow"
[[rule.action]]
set = "lamp/level"
expr = "sensor/traffic * 10"
"""


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "2m"):
    """A size-limited tmpfs at ``path`` (needs root; the test skips without it)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_filesystem(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: closing has nothing left to write
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_lamps_follow_rules_and_fail_safe_on_a_really_full_filesystem(rules_site, tmp_path):
    config = rules_site(
        {"follow.toml": FOLLOW_TRAFFIC},
        """
    [actuators."lamp/level"]
    fail_safe = 100
    stale_after = "30s"
    """,
    )
    # the smallest queue allowed, so a full disk fills it at once
    config = dataclasses.replace(config, store=dataclasses.replace(config.store, queue_size=100))

    async def scenario(data: Path):
        clock = ManualClock(time.time())
        service = Service(config, clock=clock)
        async with running(service):
            store = service.store
            await publish(service, "sensor/traffic", 3)
            await wait_until(lambda: level(service) == 30)
            await wait_until(lambda: store.pending == 0)
            filler = fill_filesystem(data)
            try:
                for i in range(50):  # enough to need new pages and a longer WAL
                    await service.hub.publish(readings(100, start=i * 100, point="sensor/noise"))
                await wait_until(lambda: store.stalled, timeout=30)
                assert service.health()["status"] == "degraded"
                committed_before = store.last_seq
                accepted = [(r.point, r.value) for r in store._pending]

                await publish(service, "sensor/traffic", 5)
                await wait_until(lambda: level(service) == 50)
                await clock.advance(31)  # the sensor falls silent
                await wait_until(lambda: level(service) == 100)
                assert store.last_seq == committed_before
            finally:
                filler.unlink()  # the disk has room again
            await wait_until(lambda: store.last_error is None and store.pending == 0, timeout=30)
            await wait_until(lambda: service.health()["status"] == "ok")
            stored = await store.read_after(committed_before, len(accepted))
        assert [(r.point, r.value) for r in stored] == accepted

    with small_filesystem(tmp_path / "data") as data:
        asyncio.run(asyncio.wait_for(scenario(data), 120))
