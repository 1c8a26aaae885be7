"""Serial options: the shipped sample loads (the case folders under tests/cases/serial/ run in
tests/test_case_folders.py)."""

from __future__ import annotations

from pathlib import Path

from drivers.serial.options import SerialOptions
from gateway.config import load_config

SAMPLE = Path(__file__).parents[2] / "drivers" / "serial" / "sample.toml"


def test_sample_config_loads():
    config = load_config(SAMPLE)
    devices = {d.name: d for d in config.devices}
    assert set(devices) == {"air-north", "air-south", "van-gps", "carpark-gate", "cabinet-probe"}
    air: SerialOptions = devices["air-north"].options
    assert air.port.port.startswith("/dev/serial/by-id/") and not air.polled
    assert devices["air-south"].options.polled and devices["air-south"].interval == 60.0
    assert config.points["carpark-gate/sign"].writable
    assert config.points["cabinet-probe/temperature"].unit == "Cel"
    assert config.points["van-gps/latitude"].unit == "lat"
    assert config.points["air-north/pm2_5"].unit == "ug/m3"
