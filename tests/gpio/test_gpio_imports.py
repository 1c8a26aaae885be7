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
