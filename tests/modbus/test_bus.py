"""The line scheduler: writes overtake queued polls, cancelled waiters do not wedge the line,
devices that disagree about a shared line are refused, and frames keep their gap."""

from __future__ import annotations

import asyncio

import pytest

from drivers.modbus.bus import POLL_PRIORITY, WRITE_PRIORITY, Bus, BusConflict, PriorityLock
from drivers.modbus.options import BusSettings, Transport


def test_writes_overtake_queued_polls():
    async def scenario():
        lock = PriorityLock()
        order: list[str] = []

        async def user(name: str, priority: int) -> None:
            await lock.acquire(priority)
            order.append(name)
            await asyncio.sleep(0)
            lock.release()

        await lock.acquire(POLL_PRIORITY)  # a poll is on the line
        tasks = [asyncio.create_task(user(f"poll{i}", POLL_PRIORITY)) for i in range(3)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(user("write", WRITE_PRIORITY)))
        await asyncio.sleep(0)
        lock.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == ["write", "poll0", "poll1", "poll2"]


def test_a_cancelled_waiter_passes_the_line_on():
    async def scenario():
        lock = PriorityLock()
        await lock.acquire(POLL_PRIORITY)
        doomed = asyncio.create_task(lock.acquire(WRITE_PRIORITY))
        patient = asyncio.create_task(lock.acquire(POLL_PRIORITY))
        await asyncio.sleep(0)
        doomed.cancel()
        lock.release()
        await asyncio.wait_for(patient, 5)
        lock.release()
        await asyncio.wait_for(lock.acquire(POLL_PRIORITY), 5)  # free again

    asyncio.run(scenario())


def test_devices_sharing_a_serial_port_must_agree_on_its_settings():
    async def scenario():
        a = BusSettings(Transport.RTU, serial_port="/dev/ttyUSB0", baudrate=9600)
        b = BusSettings(Transport.RTU, serial_port="/dev/ttyUSB0", baudrate=19200)
        bus = Bus(a)
        try:
            bus.attach("meter", a)
            bus.attach("meter2", a)
            with pytest.raises(
                BusConflict,
                match="device lamp wants /dev/ttyUSB0@19200-8N1 but device meter "
                "already uses /dev/ttyUSB0@9600-8N1",
            ):
                bus.attach("lamp", b)
        finally:
            await bus.close()

    asyncio.run(scenario())


def test_one_bus_per_line_key():
    tcp_a = BusSettings(Transport.TCP, host="10.0.0.5", port=502)
    tcp_b = BusSettings(Transport.RTU_OVER_TCP, host="10.0.0.5", port=502)
    serial = BusSettings(Transport.RTU, serial_port="/dev/ttyUSB0")
    assert len({tcp_a.key, tcp_b.key, serial.key}) == 3
    assert serial.key == BusSettings(Transport.RTU, serial_port="/dev/ttyUSB0", baudrate=115200).key
