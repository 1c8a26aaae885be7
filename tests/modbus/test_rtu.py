"""Modbus RTU on socat pseudo-terminal pairs: real slaves, a shared bus, a dead slave,
line noise and an adapter that disappears."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

from drivers.modbus.wire import with_crc
from gateway.service import Service
from tests.conftest import running, wait_until

from .harness import load_site, make_drivers, values
from .peers import modbus_tk_rtu, pty_pair, pymodbus_rtu, socat_available, start_pty_pair
from .roundtrip import profile_toml
from .scenarios import check_round_trip

pytestmark = pytest.mark.skipif(not socat_available(), reason="socat is not installed")


def rtu_device(
    name: str,
    port: str,
    unit: int,
    profile: str = "profiles/roundtrip.toml",
    interval: str = "1s",
    extra: str = "",
) -> str:
    return f"""
[[devices]]
name = "{name}"
driver = "modbus"
interval = "{interval}"
[devices.options]
profile = "{profile}"
transport = "rtu"
serial_port = "{port}"
baudrate = 19200
unit = {unit}
timeout = "500ms"
{extra}
"""


def run(coro, timeout: float = 90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.mark.parametrize("peer_factory", [pymodbus_rtu, modbus_tk_rtu], ids=["pymodbus", "modbus-tk"])
def test_every_type_and_order_round_trips_over_rtu(tmp_path, peer_factory):
    async def scenario():
        async with pty_pair(tmp_path) as pair, peer_factory(pair.slave, units=(5,)) as peer:
            config = load_site(
                tmp_path,
                rtu_device("rt", pair.master, 5, extra="verify_writes = true"),
                {"profiles/roundtrip.toml": profile_toml()},
            )
            drivers, _ = make_drivers(config)
            await drivers["rt"].open()
            try:
                await check_round_trip(drivers["rt"], peer, unit=5)
                health = drivers["rt"].health()
                assert health["timeouts"] == 0 and health["crc_errors"] == 0
            finally:
                await drivers["rt"].close()

    run(scenario())


def test_dead_slave_does_not_stall_the_others_on_the_bus(tmp_path):
    """Three meters on one RS-485 line, unit 3 never answers. Polled every 200 ms for ~4 s,
    units 1 and 2 must complete at least half of their nominal polls (a generous bound for a
    loaded machine: without the breaker every cycle of the dead unit costs a 500 ms timeout,
    which holds the others to well under half)."""
    window = 4.0
    interval = 0.2
    extra = 'backoff_min = "1s"\nbackoff_max = "2s"'

    async def scenario():
        async with pty_pair(tmp_path) as pair, pymodbus_rtu(pair.slave, units=(1, 2)) as peer:
            body = "".join(
                rtu_device(f"lamp{u}", pair.master, u, "lamp_controller", "200ms", extra) for u in (1, 2, 3)
            )
            config = load_site(tmp_path, body)
            service = Service(config)
            started = asyncio.get_running_loop().time()
            async with running(service):
                await wait_until(lambda: "lamp1/power" in service.hub.latest, timeout=20)
                bus = service.devices.shared.get("modbus", f"serial:{pair.master}")
                assert bus is not None and sorted(bus.users) == ["lamp1", "lamp2", "lamp3"]
                start = {u: service.devices.runners[f"lamp{u}"].health.polls for u in (1, 2, 3)}
                seen_before = dict(peer.log.by_unit)
                await asyncio.sleep(window)
                polls = {u: service.devices.runners[f"lamp{u}"].health.polls - start[u] for u in (1, 2, 3)}
                answered = {u: peer.log.by_unit[u] - seen_before.get(u, 0) for u in (1, 2)}
                health = service.devices.health()
                latest_online = service.hub.latest.get("lamp3/online")
                elapsed = asyncio.get_running_loop().time() - started
            return polls, answered, health, latest_online, elapsed

    polls, answered, health, latest_online, elapsed = run(scenario())
    nominal = window / interval
    for unit in (1, 2):
        assert polls[unit] >= 0.5 * nominal, f"lamp{unit} polled {polls[unit]} times, nominal {nominal:.0f}"
        # every one of its 5 blocks answered on (nearly) every poll
        assert answered[unit] >= 5 * 0.5 * nominal
        assert health[f"lamp{unit}"]["detail"]["online"] is True
    dead = health["lamp3"]["detail"]
    assert dead["online"] is False and dead["breaker"] == "open"
    # at most one timeout per backoff period (1 s, then 2 s) over the whole run
    assert 1 <= dead["timeouts"] <= 1 + elapsed / 1.0
    assert dead["skipped_polls"] > dead["timeouts"]
    assert latest_online is not None and latest_online.value is False


def test_crc_error_is_told_apart_from_silence(tmp_path, caplog):
    """A slave whose replies are corrupted on the line (a responder writing a bad CRC)."""

    async def scenario():
        async with pty_pair(tmp_path) as pair:
            import serial

            line = serial.Serial(pair.slave, 19200, timeout=0.05)
            stop = threading.Event()

            def noisy_slave() -> None:
                while not stop.is_set():
                    request = line.read(8)
                    if len(request) == 8:
                        reply = bytearray(with_crc(bytes([request[0], request[1], 2, 0, 42])))
                        reply[-1] ^= 0xFF
                        line.write(bytes(reply))

            thread = threading.Thread(target=noisy_slave, daemon=True)
            thread.start()
            try:
                profile = '[profile]\nname = "one"\n[[points]]\nname = "x"\ntable = "holding_register"\naddress = 7\n'
                config = load_site(
                    tmp_path,
                    rtu_device("noisy", pair.master, 9, extra='backoff_min = "10ms"'),
                    {"profiles/roundtrip.toml": profile},
                )
                drivers, _ = make_drivers(config)
                driver = drivers["noisy"]
                await driver.open()
                try:
                    assert values(await driver.poll()) == {"online": False}
                    health = driver.health()
                    assert health["crc_errors"] == 1 and health["timeouts"] == 0
                    assert health["bus"]["crc_errors"] == 1
                finally:
                    await driver.close()
            finally:
                stop.set()
                await asyncio.to_thread(thread.join, 5)
                line.close()

    with caplog.at_level(logging.WARNING, logger="gateway.driver.modbus"):
        run(scenario())
    assert "event=crc_error device=noisy unit=9 point=x register=holding_register:7+1" in caplog.text


def test_vanished_serial_adapter_is_survived_and_recovered(tmp_path: Path, caplog):
    async def scenario():
        pair = start_pty_pair(tmp_path)
        try:
            config = load_site(
                tmp_path,
                rtu_device(
                    "lamp",
                    pair.master,
                    1,
                    "lamp_controller",
                    "100ms",
                    'backoff_min = "100ms"\nbackoff_max = "500ms"',
                ),
            )
            service = Service(config)
            async with running(service):
                async with pymodbus_rtu(pair.slave, units=(1,)):
                    await wait_until(
                        lambda: (
                            service.hub.latest.get("lamp/online") is not None
                            and service.hub.latest["lamp/online"].value is True
                        ),
                        timeout=20,
                    )
                pair.stop()  # the USB adapter is unplugged
                await wait_until(lambda: service.hub.latest["lamp/online"].value is False, timeout=20)
                runner = service.devices.runners["lamp"]
                assert runner.health.state == "running"  # the driver was not torn down
                assert runner.driver is not None and runner.driver.health()["bus_unavailable"] >= 1
                pair = start_pty_pair(tmp_path)  # plugged back in
                async with pymodbus_rtu(pair.slave, units=(1,)):
                    await wait_until(lambda: service.hub.latest["lamp/online"].value is True, timeout=40)
        finally:
            pair.stop()

    with caplog.at_level(logging.INFO, logger="gateway.driver.modbus"):
        run(scenario(), timeout=120)
    assert "event=device_offline device=lamp unit=1" in caplog.text
    assert "event=device_online device=lamp unit=1" in caplog.text
