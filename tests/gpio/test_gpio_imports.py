"""The GPIO driver runs gpiozero without importlib.metadata (and the email, zipfile and csv
packages it pulls in): the pin factory and pin class are given, so gpiozero never looks
them up by name. Run in a fresh interpreter; the test process has imported everything."""

from __future__ import annotations

import json

from tests.fresh import run_fresh

PROBE = """
import json, sys
from drivers.gpio.factories import make_factory
import gpiozero
factory = make_factory("mock")
relay = gpiozero.DigitalOutputDevice(17, pin_factory=factory)
relay.on()
door = gpiozero.Button(27, pin_factory=factory)
factory.pin(27).drive_low()
before = sorted(m for m in ("importlib.metadata._meta", "email", "zipfile", "csv") if m in sys.modules)
from importlib.metadata import entry_points  # still there for whoever needs it
found = bool(entry_points(group="console_scripts"))
print(json.dumps({"relay": relay.value, "door": door.is_pressed, "before": before, "found": found}))
"""


def test_gpio_with_a_given_factory_never_imports_importlib_metadata():
    run = run_fresh(PROBE)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout) == {"relay": 1, "door": True, "before": [], "found": True}


SITE_PROBE = """
import asyncio, json, sys, tempfile
from pathlib import Path
from gateway.config import load_config
from gateway.service import Service
from tests.conftest import SITE_HEADER, running, wait_until, write_site
from tests.gpio.test_gpio import IO, driver_of, latest

async def scenario():
    service = Service(load_config(write_site(Path(tempfile.mkdtemp()), IO, SITE_HEADER)))
    async with running(service):
        await wait_until(lambda: driver_of(service) is not None and latest(service, "dimmer") is not None)
        await service.devices.write("cabinet/lamp_relay", True)
        driver_of(service).pin("button").drive_low()
        await wait_until(lambda: latest(service, "button") is True)
        return driver_of(service).pin("lamp_relay").state

lamp = asyncio.run(scenario())
parts = sorted(m for m in sys.modules if m.startswith("gpiozero."))
deferred = sorted(m for m in ("statistics", "colorzero") if m in sys.modules)
init_ran = bool(sys.modules["gpiozero"].__dict__.get("_deferred_init_ran"))
import gpiozero
from drivers.gpio.factories import make_factory
factory = make_factory("mock")
led = gpiozero.LED(26, pin_factory=factory)
led.on()
# what gpiozero took as stand-ins still works: a smoothed input (statistics.median) and an
# RGB LED's colour (colorzero.Color)
line = gpiozero.LineSensor(22, pin_factory=factory, queue_len=3, sample_rate=200)
factory.pin(22).drive_high()
line.wait_for_no_line(timeout=5)
rgb = gpiozero.RGBLED(5, 6, 13, pin_factory=factory)
rgb.color = (1, 0, 0)
import colorzero, statistics
print(json.dumps({"lamp": lamp, "parts": parts, "deferred": deferred, "init_ran": init_ran,
                  "led": led.value, "boards_after": "gpiozero.boards" in sys.modules,
                  "line": line.value, "rgb": rgb.color.html,
                  "real_after": isinstance(colorzero.Color("red"), colorzero.Color)
                  and statistics.median([1, 5, 2]) == 2}))
"""


def test_a_gpio_site_loads_the_gpiozero_modules_it_uses_and_gpiozero_stays_whole():
    run = run_fresh(SITE_PROBE)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["lamp"] == 1  # the relay was driven and the button read, through the driver
    assert report["init_ran"] is False  # gpiozero's __init__ never ran for the site
    assert report["deferred"] == []  # nor were statistics and colorzero loaded
    unused = {"gpiozero.boards", "gpiozero.spi_devices", "gpiozero.fonts", "gpiozero.internal_devices"}
    assert unused.isdisjoint(report["parts"]) and "gpiozero.output_devices" in report["parts"]
    # a first use of the package itself runs its __init__: everything of gpiozero still works
    assert report["led"] == 1 and report["boards_after"] is True
    assert report["line"] == 1.0 and report["rgb"] == "#ff0000"
    # whoever imports statistics or colorzero afterwards gets the real modules
    assert report["real_after"] is True
