"""Modbus TCP and RTU-over-TCP against real slaves on loopback: pymodbus and modbus-tk."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType

from gateway.driver import WriteError

from .harness import load_site, make_drivers, values
from .peers import modbus_tk_tcp, pymodbus_tcp
from .roundtrip import profile_toml
from .scenarios import check_round_trip


def device(
    name: str,
    port: int,
    profile: str = "profiles/roundtrip.toml",
    unit: int = 1,
    transport: str = "tcp",
    extra: str = "",
) -> str:
    return f"""
[[devices]]
name = "{name}"
driver = "modbus"
interval = "1s"
[devices.options]
profile = "{profile}"
transport = "{transport}"
host = "127.0.0.1"
port = {port}
unit = {unit}
timeout = "2s"
{extra}
"""


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.mark.parametrize("peer_factory", [pymodbus_tcp, modbus_tk_tcp], ids=["pymodbus", "modbus-tk"])
def test_every_type_and_order_round_trips_over_tcp(tmp_path, peer_factory):
    async def scenario():
        async with peer_factory(units=(7,)) as (peer, port):
            config = load_site(
                tmp_path,
                device("rt", port, unit=7, extra="verify_writes = true"),
                {"profiles/roundtrip.toml": profile_toml()},
            )
            drivers, _ = make_drivers(config)
            driver = drivers["rt"]
            await driver.open()
            try:
                await check_round_trip(driver, peer, unit=7)
                assert driver.health()["write_errors"] == 0
            finally:
                await driver.close()

    run(scenario())


def test_round_trip_over_rtu_framing_on_tcp(tmp_path):
    """A serial-to-Ethernet converter passes RTU frames (with CRC) through a TCP socket."""

    async def scenario():
        async with pymodbus_tcp(units=(3,), framer=FramerType.RTU) as (peer, port):
            config = load_site(
                tmp_path,
                device("conv", port, unit=3, transport="rtu_over_tcp"),
                {"profiles/roundtrip.toml": profile_toml()},
            )
            drivers, _ = make_drivers(config)
            await drivers["conv"].open()
            try:
                await check_round_trip(drivers["conv"], peer, unit=3)
            finally:
                await drivers["conv"].close()

    run(scenario())


SCATTERED = random.Random(40)


def scattered_profile(count: int = 40) -> str:
    lines = ['[profile]\nname = "scattered"\n']
    address = 0
    for i in range(count):
        address += SCATTERED.randint(1, 9)
        kind = SCATTERED.choice(["uint16", "int16", "float32", "uint32"])
        lines.append(
            f'\n[[points]]\nname = "r{i}"\ntable = "holding_register"\naddress = {address}\ntype = "{kind}"\n'
        )
        address += 2
    return "".join(lines)


def test_forty_scattered_registers_are_read_in_a_handful_of_requests(tmp_path):
    profile = scattered_profile()

    async def requests_per_poll(coalesce: bool) -> tuple[int, int]:
        async with pymodbus_tcp() as (peer, port):
            config = load_site(
                tmp_path,
                device("m", port, extra=f"coalesce = {str(coalesce).lower()}"),
                {"profiles/roundtrip.toml": profile},
            )
            drivers, _ = make_drivers(config)
            await drivers["m"].open()
            try:
                before = peer.log.total
                readings = await drivers["m"].poll()
                return peer.log.total - before, len([r for r in readings if not r.point.endswith("/online")])
            finally:
                await drivers["m"].close()

    coalesced, got = run(requests_per_poll(True))
    naive, got_naive = run(requests_per_poll(False))
    assert got == got_naive == 40
    assert naive == 40
    assert coalesced <= 5, f"{coalesced} requests for 40 scattered registers"


def test_energy_meter_profile_takes_four_requests_instead_of_45(tmp_path):
    async def scenario():
        async with pymodbus_tcp() as (peer, port):
            config = load_site(tmp_path, device("meter", port, profile="energy_meter"))
            drivers, _ = make_drivers(config)
            await drivers["meter"].open()
            try:
                await peer.set(1, "input_register", 70, [0x4248, 0x0000])  # 50.0 Hz
                readings = values(await drivers["meter"].poll())
                assert readings["frequency"] == 50.0
                assert len(readings) == 46
                assert peer.log.total == 4
            finally:
                await drivers["meter"].close()

    run(scenario())


def test_illegal_address_in_a_bridged_gap_splits_the_block_and_names_the_point(tmp_path, caplog):
    profile = """
    [profile]
    name = "holey"
    [[points]]
    name = "a"
    table = "holding_register"
    address = 0
    [[points]]
    name = "b"
    table = "holding_register"
    address = 4
    [[points]]
    name = "missing"
    table = "holding_register"
    address = 12
    [[points]]
    name = "c"
    table = "holding_register"
    address = 13
    """

    async def scenario():
        # Registers 2 (a gap the planner bridges) and 12 (a configured point) do not exist.
        async with pymodbus_tcp(holes=[("holding_register", 2), ("holding_register", 12)]) as (peer, port):
            config = load_site(tmp_path, device("dev", port), {"profiles/roundtrip.toml": profile})
            drivers, _ = make_drivers(config)
            driver = drivers["dev"]
            await driver.open()
            try:
                await peer.set(1, "holding_register", 4, [44])
                await peer.set(1, "holding_register", 13, [13])
                assert len(driver.blocks) == 1
                first = values(await driver.poll())
                assert first == {"online": True}  # the one block was refused
                assert len(driver.blocks) == 3  # split at the gaps: [0] [4] [12,13]
                second = values(await driver.poll())
                assert second == {"a": 0, "b": 44}
                assert len(driver.blocks) == 4  # the contiguous pair was refused too: read apart
                for _ in range(2):
                    assert values(await driver.poll()) == {"a": 0, "b": 44, "c": 13}
                health = driver.health()
                assert health["exceptions"] == 4 and health["online"] is True
                assert health["timeouts"] == 0
            finally:
                await driver.close()

    with caplog.at_level(logging.WARNING, logger="gateway.driver.modbus"):
        run(scenario())
    text = caplog.text
    assert "event=block_split device=dev unit=1 register=holding_register:0+14 points=a,b,missing,c" in text
    assert "event=block_split device=dev unit=1 register=holding_register:12+2 points=missing,c" in text
    assert (
        text.count("event=exception_response device=dev unit=1 point=missing register=holding_register:12+1")
        == 1
    )
    assert "illegal_data_address" in text


def test_device_busy_is_logged_and_counted_without_taking_the_device_offline(tmp_path, caplog):
    async def busy(function_code, start_address, address, count, registers, set_values):
        return ExcCodes.DEVICE_BUSY if function_code == 3 else None

    async def scenario():
        async with pymodbus_tcp(action=busy) as (peer, port):
            config = load_site(tmp_path, device("meter", port, profile="lamp_controller"))
            drivers, _ = make_drivers(config)
            driver = drivers["meter"]
            await driver.open()
            try:
                readings = values(await driver.poll())
                assert "power" in readings and "level" not in readings
                assert readings["online"] is True
                assert driver.health()["exceptions"] == 1
                with pytest.raises(WriteError):
                    await driver.write("level", 101_000)
            finally:
                await driver.close()

    with caplog.at_level(logging.WARNING, logger="gateway.driver.modbus"):
        run(scenario())
    assert "point=level,fade_time,power_limit register=holding_register:0+4 code=6" in caplog.text
    assert "server_device_busy" in caplog.text


def test_writes_are_refused_with_messages_that_name_point_and_cause(tmp_path):
    async def scenario():
        async with pymodbus_tcp(holes=[("holding_register", 1)]) as (peer, port):
            config = load_site(
                tmp_path, device("lamp", port, profile="lamp_controller", extra="verify_writes = true")
            )
            drivers, _ = make_drivers(config)
            driver = drivers["lamp"]
            await driver.open()
            try:
                with pytest.raises(WriteError, match=r"lamp/power is not writable"):
                    await driver.write("power", 3)
                with pytest.raises(WriteError, match=r"lamp/level: 70000 is out of range for uint16"):
                    await driver.write("level", 70000)
                with pytest.raises(
                    WriteError,
                    match=r"lamp/fade_time: write to holding_register:1 of unit 1 "
                    r"failed: exception 2 \(illegal_data_address\)",
                ):
                    await driver.write("fade_time", 2.5)
                await driver.write("level", 55)
                assert await peer.get(1, "holding_register", 0, 1) == [55]
                assert driver.health()["write_errors"] == 2
            finally:
                await driver.close()

    run(scenario())


def test_read_back_verification_catches_a_device_that_ignores_the_write(tmp_path):
    async def clamp(function_code, start_address, address, count, registers, set_values):
        if function_code == 6 and address == 0 and set_values:
            set_values[0] = min(set_values[0], 80)  # the controller clamps its level to 80 %
        return None

    async def scenario():
        async with pymodbus_tcp(action=clamp) as (peer, port):
            config = load_site(
                tmp_path, device("lamp", port, profile="lamp_controller", extra="verify_writes = true")
            )
            drivers, published = make_drivers(config)
            driver = drivers["lamp"]
            await driver.open()
            try:
                await driver.write("level", 60)
                with pytest.raises(WriteError, match=r"lamp/level: device kept \[80\] after writing \[95\]"):
                    await driver.write("level", 95)
                assert driver.health()["verify_failures"] == 1
                assert [r.value for r in published.readings if r.point == "lamp/level"] == [60]
            finally:
                await driver.close()

    run(scenario())


def test_unreachable_endpoint_marks_device_offline_and_recovers(tmp_path, caplog):
    from .peers import free_port

    port = free_port()

    async def scenario():
        config = load_site(
            tmp_path,
            device(
                "meter", port, profile="lamp_controller", extra='backoff_min = "50ms"\nconnect_timeout = "1s"'
            ),
        )
        drivers, _ = make_drivers(config)
        driver = drivers["meter"]
        await driver.open()
        try:
            first = values(await driver.poll())
            assert first == {"online": False}
            assert driver.health()["bus_unavailable"] == 1
            assert driver.health()["online"] is False
        finally:
            await driver.close()

    with caplog.at_level(logging.WARNING, logger="gateway.driver.modbus"):
        run(scenario())
    assert "event=device_offline device=meter unit=1" in caplog.text


def test_a_write_overtakes_the_polls_queued_on_a_busy_line(tmp_path):
    async def scenario():
        async with pymodbus_tcp(units=(1, 2, 3, 4, 5)) as (peer, port):
            body = "".join(device(f"lamp{u}", port, profile="lamp_controller", unit=u) for u in range(1, 6))
            drivers, _ = make_drivers(load_site(tmp_path, body))
            for driver in drivers.values():
                await driver.open()
            bus = drivers["lamp1"]._bus
            try:
                stop = asyncio.Event()

                async def keep_polling(driver):
                    while not stop.is_set():
                        await driver.poll()

                pollers = [asyncio.create_task(keep_polling(d)) for d in drivers.values()]
                await wait_for_queue(bus, 4)
                queued = bus.health()["queued"]
                sent_before = peer.log.total
                await drivers["lamp3"].write("level", 42)
                stop.set()
                await asyncio.gather(*pollers)
            finally:
                for driver in drivers.values():
                    await driver.close()
            write_index = peer.log.functions.index(6)
            return queued, write_index - sent_before

    queued, overtaken_by = run(scenario())
    assert queued >= 4
    # only the request already on the line (and one just handed the line) may go first
    assert overtaken_by <= 2


async def wait_for_queue(bus, depth: int) -> None:
    for _ in range(2000):
        if bus.health()["queued"] >= depth:
            return
        await asyncio.sleep(0)
    raise AssertionError("the line never got busy")


def test_profile_can_require_function_16_for_single_register_writes(tmp_path):
    profile = """
    [profile]
    name = "fc16 only"
    write_multiple = true
    [[points]]
    name = "setpoint"
    table = "holding_register"
    address = 9
    type = "int16"
    scale = 0.5
    writable = true
    """

    async def scenario():
        async with pymodbus_tcp() as (peer, port):
            drivers, _ = make_drivers(
                load_site(tmp_path, device("plc", port), {"profiles/roundtrip.toml": profile})
            )
            await drivers["plc"].open()
            try:
                await drivers["plc"].write("setpoint", -10.5)
                assert await peer.get(1, "holding_register", 9, 1) == [0x10000 - 21]
                assert values(await drivers["plc"].poll())["setpoint"] == -10.5
            finally:
                await drivers["plc"].close()
            return peer.log.functions

    functions = run(scenario())
    assert 16 in functions and 6 not in functions


def test_gateway_reporting_a_silent_slave_trips_the_breaker(tmp_path, caplog):
    """A TCP-to-RTU gateway answers exception 0x0B when the meter behind it does not reply."""

    async def silent_behind_gateway(function_code, start_address, address, count, registers, set_values):
        return ExcCodes.GATEWAY_NO_RESPONSE

    async def scenario():
        async with pymodbus_tcp(action=silent_behind_gateway) as (peer, port):
            drivers, _ = make_drivers(
                load_site(
                    tmp_path,
                    device(
                        "meter", port, profile="energy_meter", extra='backoff_min = "1h"\nbackoff_max = "2h"'
                    ),
                )
            )
            driver = drivers["meter"]
            await driver.open()
            try:
                assert values(await driver.poll()) == {"online": False}
                assert values(await driver.poll()) == {}  # breaker open: the line is spared
                health = driver.health()
                assert health["breaker"] == "open" and health["skipped_polls"] == 1
                return peer.log.total
            finally:
                await driver.close()

    with caplog.at_level(logging.WARNING, logger="gateway.driver.modbus"):
        assert run(scenario()) == 1
    assert "event=device_offline device=meter unit=1" in caplog.text
    assert "gateway_target_failed_to_respond" in caplog.text


def test_device_timeout_longer_than_connect_timeout_is_honoured(tmp_path):
    async def slow(function_code, start_address, address, count, registers, set_values):
        await asyncio.sleep(0.4)  # a slow PLC: answers after 400 ms
        return None

    async def scenario():
        async with pymodbus_tcp(action=slow) as (peer, port):
            drivers, _ = make_drivers(
                load_site(
                    tmp_path,
                    device("plc", port, profile="carpark_controller", extra='connect_timeout = "200ms"'),
                )
            )
            await drivers["plc"].open()
            try:
                readings = values(await drivers["plc"].poll())
            finally:
                await drivers["plc"].close()
            return readings, drivers["plc"].health()

    readings, health = run(scenario())
    assert readings["online"] is True and "occupied" in readings
    assert health["timeouts"] == 0 and health["protocol_errors"] == 0


def test_frames_keep_the_configured_gap(tmp_path):
    async def scenario():
        async with pymodbus_tcp() as (peer, port):
            drivers, _ = make_drivers(
                load_site(
                    tmp_path, device("lamp", port, profile="lamp_controller", extra='frame_gap = "60ms"')
                )
            )
            await drivers["lamp"].open()
            try:
                await drivers["lamp"].poll()
                await drivers["lamp"].write("level", 10)
            finally:
                await drivers["lamp"].close()
            return peer.log.arrivals

    arrivals = run(scenario())
    assert len(arrivals) == 6
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    # a lower bound only: a busy machine makes gaps longer, never shorter
    assert min(gaps) >= 0.055, gaps
