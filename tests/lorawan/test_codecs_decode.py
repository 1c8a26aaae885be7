"""`gateway codecs decode CODEC --port N HEX`: one real payload in, the points it gives out,
as the gateway would store them (the command the technician runs before wiring a sensor)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "drivers" / "lorawan" / "examples"


def decode(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "codecs", "decode", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_cayenne_lpp_reference_payload():
    # The Cayenne LPP documentation's frames: two temperatures, then a GPS fix.
    result = decode(
        "cayenne",
        "--port",
        "1",
        "03670110056700FF",
    )
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [["temperature_3", "27.2"], ["temperature_5", "25.5"]]
    result = decode("cayenne", "--port", "2", "01 88 06 76 5f f2 96 0a 00 03 e8")
    assert lines(result.stdout) == [
        ["gps_1_latitude", "42.3519"],
        ["gps_1_longitude", "-87.9094"],
        ["gps_1_altitude", "10.0"],
    ]


def test_javascript_codec_from_the_examples_by_script_and_by_yaml(tmp_path):
    # water-meter.yaml's first example: volume 123.456 m3, flow 0.5, no leak, battery 90 %
    want = [
        ["volume", "123.456"],
        ["flow", "0.5"],
        ["leak", "false"],
        ["reverse_flow", "false"],
        ["battery", "90"],
    ]
    by_script = decode(str(EXAMPLES / "water-meter.js"), "--port", "1", "0001E24001F4005A")
    assert by_script.returncode == 0, by_script.stderr
    assert lines(by_script.stdout) == want
    # a relative path is read from where the command runs
    by_yaml = decode("water-meter.yaml", "-p", "1", "0001E24001F4005A", cwd=EXAMPLES)
    assert lines(by_yaml.stdout) == want
    warned = decode(str(EXAMPLES / "water-meter.js"), "--port", "1", "000003E800000105")
    assert warned.returncode == 0 and "warning: battery low" in warned.stderr


def test_refusals_say_why():
    wrong_port = decode(str(EXAMPLES / "water-meter.js"), "--port", "2", "00")
    assert (
        wrong_port.returncode == 1 and "error: unknown FPort 2" in wrong_port.stderr and not wrong_port.stdout
    )
    truncated = decode("cayenne", "--port", "1", "0367")
    assert truncated.returncode == 1 and "truncated" in truncated.stderr
    not_hex = decode("cayenne", "--port", "1", "0x3G")
    assert not_hex.returncode == 2 and "is not hex" in not_hex.stderr
    misspelt = decode("cayene", "--port", "1", "00")
    assert misspelt.returncode == 2 and "did you mean 'cayenne'?" in misspelt.stderr
    missing = decode("sensor.js", "--port", "1", "00")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
