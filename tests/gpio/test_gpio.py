"""The GPIO driver against gpiozero's mock pin factory: outputs observed on the pins, inputs driven."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from drivers.gpio.factories import PinFactoryError, make_factory
from gateway.config import load_config
from gateway.driver import WriteError
from gateway.problems import ConfigError
from gateway.service import Service
from tests.conftest import running, wait_until, write_site
from tests.fresh import run_fresh

IO = """
[[devices]]
name = "cabinet"
driver = "gpio"
[devices.options]
pin_factory = "mock"
heartbeat = "0s"
[[devices.options.points]]
name = "lamp_relay"
type = "relay"
pin = 17
[[devices.options.points]]
name = "fan_relay"
type = "relay"
pin = "GPIO22"
active = "low"
initial = false
[[devices.options.points]]
name = "dimmer"
type = "pwm"
pin = 18
frequency = 200
initial = 100
[[devices.options.points]]
name = "button"
type = "button"
pin = 5
[[devices.options.points]]
name = "door_open"
type = "input"
pin = 6
pull = "up"
active = "high"
[[devices.options.points]]
name = "loop_detector"
type = "input"
pin = 13
pull = "down"
debounce = "80ms"
"""


def driver_of(service: Service):
    return service.devices.runners["cabinet"].driver


def latest(service: Service, point: str):
    reading = service.hub.latest.get(f"cabinet/{point}")
    return None if reading is None else reading.value


def test_outputs_are_seen_on_the_pins_and_inputs_publish_changes(site):
    config = site(IO)

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: driver_of(service) is not None and latest(service, "dimmer") is not None)
            driver = driver_of(service)
            lamp, fan, dimmer = driver.pin("lamp_relay"), driver.pin("fan_relay"), driver.pin("dimmer")
            # Initial states, including an active-low relay board that is "off" with the pin high.
            assert lamp.state == 0 and fan.state == 1 and dimmer.state == 1.0
            assert dimmer.frequency == 200
            assert latest(service, "lamp_relay") is False and latest(service, "dimmer") == 100.0

            await service.devices.write("cabinet/lamp_relay", True)
            await service.devices.write("cabinet/fan_relay", True)
            await service.devices.write("cabinet/dimmer", 35)
            assert lamp.state == 1 and fan.state == 0
            assert dimmer.state == pytest.approx(0.35)
            await wait_until(lambda: latest(service, "dimmer") == 35.0)
            assert latest(service, "fan_relay") is True

            for bad_value, point, message in (
                (150, "dimmer", "outside"),
                ("on", "lamp_relay", "true or false"),
                (True, "dimmer", "number"),
            ):
                with pytest.raises(WriteError, match=message):
                    await service.devices.write(f"cabinet/{point}", bad_value)
            with pytest.raises(WriteError, match="not a writable point"):
                await service.devices.write("cabinet/button", True)

            # A button pulls up: pressed = pin low = active.
            button = driver.pin("button")
            assert latest(service, "button") is False
            button.drive_low()
            await wait_until(lambda: latest(service, "button") is True)
            button.drive_high()
            await wait_until(lambda: latest(service, "button") is False)

            # A contact that shorts to ground while the door is shut, reported as door_open:
            # pulled up (high) = open = true, against the pull-up's usual active-low sense.
            door = driver.pin("door_open")
            assert latest(service, "door_open") is True
            door.drive_low()
            await wait_until(lambda: latest(service, "door_open") is False)

    asyncio.run(scenario())


def test_debounce_publishes_only_the_state_that_held(site):
    config = site(IO)

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: latest(service, "loop_detector") is False)
            sub = service.hub.subscribe(
                "loop", maxsize=100, accepts=lambda r: r.point == "cabinet/loop_detector"
            )
            pin = driver_of(service).pin("loop_detector")
            for _ in range(5):  # contact chatter, far faster than 80 ms
                pin.drive_high()
                pin.drive_low()
            pin.drive_high()
            await wait_until(lambda: latest(service, "loop_detector") is True)
            await asyncio.sleep(0.3)  # room for any wrongly published bounce to arrive
            seen = []
            while not sub.queue.empty():
                seen += [r.value for r in sub.queue.get_nowait()]
            assert seen == [True]
            health = service.devices.runners["cabinet"].health_report()["detail"]
            assert health["inputs"]["loop_detector"]["changes"] == 11
            assert health["changes_dropped_by_debounce"] == 10

    asyncio.run(scenario())


def test_callbacks_from_another_thread_reach_the_loop(site):
    config = site(IO)

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: latest(service, "button") is False)
            pin = driver_of(service).pin("button")
            await asyncio.to_thread(pin.drive_low)  # as lgpio would: from its own thread
            await wait_until(lambda: latest(service, "button") is True)

    asyncio.run(scenario())


def test_sample_config_loads():
    config = load_config(Path(__file__).parents[2] / "drivers" / "gpio" / "sample.toml")
    points = config.points
    assert points["street-io/lamp_relay"].writable and points["street-io/dimmer"].unit == "%"
    assert not points["street-io/vehicle_loop"].writable


@pytest.mark.parametrize(
    "body, message",
    [
        (
            'pin_factory = "lgpoi"\n[[devices.options.points]]\nname = "r"\ntype = "relay"\npin = 4',
            "'lgpoi' is not one of lgpio, rpigpio, native, mock (did you mean 'lgpio'?)",
        ),
        (
            '[[devices.options.points]]\nname = "a"\ntype = "relay"\npin = 4\n'
            '[[devices.options.points]]\nname = "b"\ntype = "input"\npin = "GPIO4"',
            "pin GPIO4 is already used by point 'a'",
        ),
        (
            '[[devices.options.points]]\nname = "x"\ntype = "input"\npin = 4\npull = "none"',
            'an input without a pull resistor needs active = "high" or "low"',
        ),
        (
            '[[devices.options.points]]\nname = "x"\ntype = "pwm"\npin = 4\ninitial = 120',
            "must be at most 100.0",
        ),
        (
            '[[devices.options.points]]\nname = "x"\ntype = "relay"\npin = 99',
            "BCM pin numbers run from 0 to 53",
        ),
    ],
)
def test_config_errors_name_the_key(tmp_path, body, message):
    path = write_site(
        tmp_path, '[[devices]]\nname = "io"\ndriver = "gpio"\n[devices.options]\n' + body + "\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert message in str(raised.value)


def test_board_factories_are_explained_not_crashed_on_a_pc():
    for name in ("lgpio", "rpigpio", "native"):
        try:
            factory = make_factory(name)
        except PinFactoryError as exc:
            assert f"pin factory '{name}'" in str(exc)
        else:  # running on a real Pi
            factory.close()


def test_nothing_imports_board_libraries_with_the_mock_factory(tmp_path):
    write_site(tmp_path, IO)
    script = textwrap.dedent(f"""
        import asyncio, sys
        from gateway.config import load_config
        from gateway.service import Service
        config = load_config({str(tmp_path / "gateway.toml")!r})
        async def main():
            service = Service(config)
            task = asyncio.create_task(service.run())
            await service.wait_ready()
            for _ in range(200):
                if service.devices.runners["cabinet"].driver is not None:
                    break
                await asyncio.sleep(0.01)
            service.stop()
            await asyncio.wait_for(task, 15)
        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("lgpio", "RPi", "pigpio")))
    """)
    result = run_fresh(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_input_changes_count_as_readings_in_device_health(site):
    """A push driver's readings set last_reading_at like a poll does (it stayed null before)."""
    config = site(IO)

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: driver_of(service) is not None and latest(service, "button") is not None)
            report = service.devices.health()["cabinet"]
            first = report["last_reading_at"]
            assert first is not None and report["readings"] > 0
            assert report["status"] == "online" and report["stale_after"] is None  # silence is normal
            driver_of(service).pin("button").drive_low()
            await wait_until(lambda: service.devices.health()["cabinet"]["last_reading_at"] > first)
            assert service.health()["status"] == "ok"

    asyncio.run(scenario())
