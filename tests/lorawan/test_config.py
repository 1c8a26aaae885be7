"""Config: the shipped sample loads; no tests/cases/lorawan/config-* folder's problems echo a
key back."""

from pathlib import Path

import pytest

from drivers.lorawan.credentials import AbpCredentials, OtaaCredentials
from gateway.config import load_config
from gateway.problems import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted((ROOT / "tests" / "cases" / "lorawan").glob("config-*"))


def test_sample_config_loads_with_its_credentials_and_codec_points():
    config = load_config(ROOT / "drivers" / "lorawan" / "sample.toml", check_data_dir=False)
    bay, meter = config.devices
    assert isinstance(bay.options.credentials, AbpCredentials)
    assert isinstance(meter.options.credentials, OtaaCredentials)
    assert bay.point("presence_1") is not None and bay.point("rssi").unit == "dBm"
    # points declared from the codec's examples, next to the configured ones
    assert meter.point("leak").kind == "bool" and meter.point("volume").unit == "m3"
    assert meter.point("report_interval").writable
    assert "Key(***)" in repr(bay.options)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_wrong_key_is_never_echoed_back(case):
    """The problems themselves are checked by tests/test_case_folders.py."""
    with pytest.raises(ConfigError) as info:
        load_config(case / "gateway.toml", check_data_dir=False)
    got = [f"{p.key}: {p.message}" for p in info.value.problems]
    assert got
    for problem in got:
        assert "8A2F6C1D5E4B3A29180706F5E4D3C2" not in problem
