"""Serial options: the shipped sample loads, and every case folder's mistake is reported by key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers.serial.options import SerialOptions
from gateway.config import load_config
from gateway.problems import ConfigError
from tests.conftest import write_site

SAMPLE = Path(__file__).parents[2] / "drivers" / "serial" / "sample.toml"
CASES = Path(__file__).parents[1] / "cases" / "serial" / "config"


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


def _site_with_options(options_text: str) -> str:
    body = re.sub(r"^\[\[", "[[devices.options.", options_text, flags=re.MULTILINE)
    return f'[[devices]]\nname = "dev"\ndriver = "serial"\n[devices.options]\n{body}'


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir()), ids=str)
def test_config_case(case, tmp_path):
    folder = CASES / case
    path = write_site(tmp_path, _site_with_options((folder / "options.toml").read_text(encoding="utf-8")))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    for expected in (folder / "expected.err").read_text(encoding="utf-8").splitlines():
        assert expected.strip() in message
